//! [`AdaLayer`]: the `tracing_subscriber::Layer` and its builder methods.

use crate::cache::{Site, SiteCache};
use crate::format::{FieldWriter, MessageBuf};
use crate::registered::Registered;
use crate::rules::MarkRules;
use std::fmt::Write;
use tracing::span::{Attributes, Id};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Records `tracing` spans and events through the process's ADA agent (see the crate docs).
/// Made by [`crate::layer`].
#[derive(Debug)]
#[must_use = "a layer records nothing until it is added to a subscriber"]
pub struct AdaLayer {
    /// Whether the process is traced (decided once, when the layer is made).
    live: bool,
    rules: MarkRules,
    sites: SiteCache,
    /// The words registered, so that a callsite is registered once.
    registered: Registered,
}

impl AdaLayer {
    /// A layer with the default mark rules (`ERROR` marks), live when the process is traced.
    pub(crate) fn new() -> AdaLayer {
        AdaLayer::with_live(ada_agent::is_enabled())
    }

    fn with_live(live: bool) -> AdaLayer {
        AdaLayer {
            live,
            rules: MarkRules::default(),
            sites: SiteCache::new(),
            registered: Registered::new(),
        }
    }

    /// Spans and events at `level` or more severe mark (replaces the level rule; the default
    /// is `Level::ERROR`).
    pub fn mark_at(mut self, level: Level) -> AdaLayer {
        self.rules.at(level);
        self
    }

    /// Spans and events whose target is `target` or inside it (`target::...`) mark, whatever
    /// their level. May be given several times.
    pub fn mark_target(mut self, target: &str) -> AdaLayer {
        self.rules.target(target);
        self
    }

    /// Nothing marks (neither the default `ERROR` rule nor any given before); rules given after
    /// this apply.
    pub fn without_marks(mut self) -> AdaLayer {
        self.rules = MarkRules::none();
        self
    }

    /// Whether this layer records: the process was traced (`ada trace`) when it was made.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// `Some(self)` when the layer records, else `None`. `Option<Layer>` is itself a layer: a
    /// `None` one tells `tracing` it wants nothing, so a subscriber made of the registry and
    /// this layer alone then disables every callsite (no span bookkeeping at all) instead of
    /// calling a layer that returns at once.
    pub fn if_live(self) -> Option<AdaLayer> {
        self.live.then_some(self)
    }

    /// The callsite's site, registering its name on first sight.
    #[inline]
    fn site(&self, meta: &'static Metadata<'static>) -> Site {
        self.sites.get_or_insert(meta, || self.register(meta))
    }

    /// Registers the callsite's name with its file and line (once per callsite: see
    /// `registered.rs`).
    #[cold]
    fn register(&self, meta: &'static Metadata<'static>) -> Site {
        let name = symbol_name(meta);
        let (file, line) = (meta.file(), meta.line());
        let word = self
            .registered
            .get_or_register(&name, file, line, || match (file, line) {
                (Some(file), Some(line)) => ada_agent::register_callsite_at(&name, 0, file, line),
                _ => ada_agent::register_callsite(&name, 0),
            });
        Site {
            word,
            mark: self.rules.matches(meta),
        }
    }
}

/// The name a callsite is registered under in the trace's symbol table: `target::name`. A
/// span's name is its own (`app::fetch`); an event's is `tracing`'s, `event file:line`
/// (`app::event src/main.rs:12`). Its file and line go beside the name, as the symbol's source
/// location.
pub fn symbol_name(meta: &Metadata<'_>) -> String {
    format!("{}::{}", meta.target(), meta.name())
}

impl<S> Layer<S> for AdaLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.live {
            // Registered here, once per callsite, so the hot paths only look it up.
            self.site(meta);
        }
        // Never `never`: that would disable the callsite for the other layers too.
        Interest::always()
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        if !self.live {
            return;
        }
        let meta = attrs.metadata();
        let site = self.site(meta);
        if site.mark {
            ada_agent::mark_word(site.word, meta.name().as_bytes());
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if !self.live {
            return;
        }
        if let Some(meta) = ctx.metadata(id) {
            ada_agent::enter_word(self.site(meta).word);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if !self.live {
            return;
        }
        if let Some(meta) = ctx.metadata(id) {
            ada_agent::exit_word(self.site(meta).word);
        }
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if !self.live {
            return;
        }
        let meta = event.metadata();
        let site = self.site(meta);
        let mut buf = MessageBuf::new();
        let _ = buf.write_str(meta.level().as_str());
        event.record(&mut FieldWriter::new(&mut buf));
        if site.mark {
            ada_agent::mark_word(site.word, buf.as_bytes());
        } else {
            ada_agent::message_word(site.word, buf.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ada_shm::sync::{Arc, AtomicUsize, Ordering};
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn an_untraced_layer_is_not_live_and_records_nothing() {
        // The test process has no `ADA_SHM`: the agent is absent.
        let layer = crate::layer();
        assert!(!layer.is_live());
        assert!(crate::layer().if_live().is_none());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("untraced");
            let _g = span.enter();
            tracing::error!(x = 1, "nothing recorded");
        });
    }

    /// Counts what reaches it: the layer beside ADA's (`fmt`, say).
    #[derive(Default, Clone)]
    struct Seen(Arc<AtomicUsize>);

    impl<S: Subscriber> Layer<S> for Seen {
        fn on_event(&self, _: &Event<'_>, _: Context<'_, S>) {
            // Relaxed: a count, read on this thread after the dispatch.
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        fn on_enter(&self, _: &Id, _: Context<'_, S>) {
            // Relaxed: as above.
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn an_untraced_layer_leaves_the_layers_beside_it_working() {
        // Either side of the other layer: a dead layer must never disable a callsite.
        for ada_inside in [true, false] {
            let seen = Seen::default();
            let dispatch = if ada_inside {
                tracing::Dispatch::new(
                    tracing_subscriber::registry()
                        .with(AdaLayer::with_live(false))
                        .with(seen.clone()),
                )
            } else {
                tracing::Dispatch::new(
                    tracing_subscriber::registry()
                        .with(seen.clone())
                        .with(AdaLayer::with_live(false)),
                )
            };
            tracing::dispatcher::with_default(&dispatch, || {
                let _g = tracing::info_span!("beside").entered();
                tracing::error!("seen");
                tracing::trace!("seen too");
            });
            // Relaxed: written on this thread.
            assert_eq!(seen.0.load(Ordering::Relaxed), 3);
        }
    }

    #[test]
    fn the_builder_sets_the_rules() {
        let layer = AdaLayer::with_live(false)
            .without_marks()
            .mark_at(Level::WARN)
            .mark_target("db");
        let mut want = MarkRules::none();
        want.at(Level::WARN);
        want.target("db");
        assert_eq!(layer.rules, want);
        assert_eq!(AdaLayer::with_live(false).rules, MarkRules::default());
    }
}
