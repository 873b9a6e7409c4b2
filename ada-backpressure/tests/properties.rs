//! Property tests: the transition function is total and live (it reaches NORMAL after a long
//! enough healthy stretch and DROPPING on exhaustion, from any state and history), the NORMAL
//! fast check agrees with it, and the policy text form round-trips.

use ada_backpressure::{
    BackpressureConfig, DropPolicy, Input, LanePolicies, LaneState, Transition, TransitionCounts,
    needs_attention, next,
};
use proptest::prelude::*;

fn state() -> impl Strategy<Value = LaneState> {
    prop::sample::select(LaneState::ALL.to_vec())
}

/// Any thresholds, valid or not: `next` must not care.
fn any_config() -> impl Strategy<Value = BackpressureConfig> {
    (any::<u32>(), any::<u32>(), any::<u64>()).prop_map(|(low, high, stability_ns)| {
        BackpressureConfig {
            low_watermark: low,
            high_watermark: high,
            stability_ns,
        }
    })
}

/// Thresholds that validate against a pool of `pool` rings, and the pool.
fn valid_config() -> impl Strategy<Value = (BackpressureConfig, u32)> {
    (2u32..64)
        .prop_flat_map(|pool| (Just(pool), 0..pool - 1))
        .prop_flat_map(|(pool, low)| (Just(pool), Just(low), low..pool - 1))
        .prop_flat_map(|(pool, low, high)| {
            (0..=1_000_000_000u64).prop_map(move |stability_ns| {
                (
                    BackpressureConfig {
                        low_watermark: low,
                        high_watermark: high,
                        stability_ns,
                    },
                    pool,
                )
            })
        })
}

fn input() -> impl Strategy<Value = Input> {
    (any::<u32>(), any::<bool>(), any::<u64>(), any::<u64>()).prop_map(
        |(free_rings, exhausted, now_ns, since_ns)| Input {
            free_rings,
            exhausted,
            now_ns,
            since_ns,
        },
    )
}

/// Runs `next` over `inputs` (each with the previous `since_ns`), counting transitions.
fn run(
    mut t: Transition,
    inputs: impl IntoIterator<Item = (u32, bool, u64)>,
    config: &BackpressureConfig,
    counts: &mut TransitionCounts,
) -> Transition {
    for (free_rings, exhausted, now_ns) in inputs {
        let n = next(
            t.state,
            Input {
                free_rings,
                exhausted,
                now_ns,
                since_ns: t.since_ns,
            },
            config,
        );
        counts.record(t.state, n.state);
        t = n;
    }
    t
}

proptest! {
    #[test]
    fn next_is_total(s in state(), i in input(), c in any_config()) {
        let t = next(s, i, &c);
        // A change of state is always stamped with the current time.
        if t.state != s {
            prop_assert_eq!(t.since_ns, i.now_ns);
        }
        // Only RECOVERY ever moves `since_ns` without changing state.
        if t.state == s && s != LaneState::Recovery {
            prop_assert_eq!(t.since_ns, i.since_ns);
        }
    }

    #[test]
    fn exhaustion_means_dropping(s in state(), i in input(), c in any_config()) {
        let t = next(s, Input { exhausted: true, ..i }, &c);
        prop_assert_eq!(t.state, LaneState::Dropping);
    }

    #[test]
    fn fast_check_agrees_with_next(i in input(), c in any_config()) {
        let t = next(LaneState::Normal, i, &c);
        let unchanged = t == Transition { state: LaneState::Normal, since_ns: i.since_ns };
        prop_assert_eq!(needs_attention(i.free_rings, i.exhausted, &c), !unchanged);
    }

    /// From any state and any history, a stretch of free rings above high (at the drained-pool
    /// count) that lasts longer than the stability period ends in NORMAL, whatever the clock
    /// did before the stretch began.
    #[test]
    fn healthy_stretch_reaches_normal(
        (c, pool) in valid_config(),
        s in state(),
        since in any::<u64>(),
        history in prop::collection::vec((0u32..70, any::<bool>(), any::<u64>()), 0..20),
        start in 0u64..u64::MAX / 4,
        gaps in prop::collection::vec(1u64..1_000_000_000, 1..40),
    ) {
        let mut counts = TransitionCounts::new();
        let t = run(Transition { state: s, since_ns: since }, history, &c, &mut counts);
        let free = pool - 1;
        let mut now = start;
        let mut stretch = vec![(free, false, now)];
        for g in &gaps {
            now += g;
            stretch.push((free, false, now));
        }
        // Then enough checks past the stability period (two: one to enter RECOVERY or restart
        // its period, one to leave it).
        now += c.stability_ns;
        stretch.push((free, false, now));
        now += c.stability_ns + 1;
        stretch.push((free, false, now));
        let end = run(t, stretch, &c, &mut counts);
        prop_assert_eq!(end.state, LaneState::Normal);
    }

    /// Any sequence that ends with the pool running dry ends in DROPPING, and DROPPING is left
    /// only through RECOVERY (or nothing at all).
    #[test]
    fn exhaustion_reaches_dropping(
        (c, _pool) in valid_config(),
        s in state(),
        steps in prop::collection::vec((0u32..70, any::<bool>(), any::<u64>()), 0..40),
        last in (0u32..70, any::<u64>()),
    ) {
        let mut counts = TransitionCounts::new();
        let mut all = steps;
        all.push((last.0, true, last.1));
        let end = run(Transition { state: s, since_ns: 0 }, all, &c, &mut counts);
        prop_assert_eq!(end.state, LaneState::Dropping);
        for to in [LaneState::Normal, LaneState::Pressure] {
            prop_assert_eq!(counts.get(LaneState::Dropping, to), 0);
        }
        prop_assert_eq!(counts.get(LaneState::Normal, LaneState::Recovery), 0);
    }

    #[test]
    fn state_byte_round_trips(b in any::<u8>()) {
        match LaneState::from_u8(b) {
            Some(s) => prop_assert_eq!(s.as_u8(), b),
            None => prop_assert!(b > 3),
        }
    }

    #[test]
    fn policies_round_trip(index in any::<bool>(), detail in any::<bool>()) {
        let pick = |newest| if newest { DropPolicy::DropNewest } else { DropPolicy::DropOldest };
        let p = LanePolicies { index: pick(index), detail: pick(detail) };
        prop_assert_eq!(LanePolicies::parse(&p.to_string()), Ok(p));
        prop_assert_eq!(LanePolicies::parse(&format!(" {} ", p.to_string().replace(',', " , "))), Ok(p));
    }

    /// The parser never panics, and an error's position and part point into the text.
    #[test]
    fn parse_is_total(text in "[a-z =,\t]{0,40}") {
        if let Err(e) = LanePolicies::parse(&text) {
            prop_assert!(e.position <= text.len());
            prop_assert_eq!(text.get(e.position..e.position + e.part.len()), Some(e.part.as_str()));
        }
    }
}
