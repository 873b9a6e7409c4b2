//! A symbol registered with its source location reaches the segment's symbol table with it;
//! one registered without keeps none.

mod common;

use ada_agent::Agent;
use ada_registry::{SymbolCursor, SymbolSource};
use common::in_process_registry;

#[test]
fn a_registered_source_location_reaches_the_symbol_table() {
    let reg = in_process_registry(2);
    let agent = Agent::from_registry(reg.clone());
    let at = SymbolSource {
        file: "src/jobs.rs",
        line: 42,
    };
    let fetch = agent.register_symbol_with_source("jobs::fetch", 0, Some(at));
    let plain = agent.register_symbol("jobs::plain", 0x40);
    let mut got = Vec::new();
    reg.symbols().read_new(&mut SymbolCursor::new(), |r| {
        let source = r.source.map(|s| (s.file.to_owned(), s.line));
        got.push((r.id, r.name.to_owned(), r.address, source));
    });
    assert_eq!(
        got,
        vec![
            (
                fetch,
                "jobs::fetch".to_owned(),
                0,
                Some(("src/jobs.rs".to_owned(), 42))
            ),
            (plain, "jobs::plain".to_owned(), 0x40, None),
        ]
    );
}
