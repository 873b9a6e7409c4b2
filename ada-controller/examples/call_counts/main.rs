//! A custom controller in a few lines: per-function call counts and total inclusive time of a
//! traced process, printed when it exits.
//!
//! ```text
//! cargo run -p ada-controller --example call_counts
//! ```
//!
//! The example traces itself: run without `ADA_SHM`, it is the controller — it creates the
//! segment, re-executes its own binary with `ADA_SHM` set, drains that child into the
//! [`counts::CallCounts`] sink and prints the table. Run with `ADA_SHM` set, it is the traced
//! child: it runs [`counts::workload`], which records through `ada_agent`. Everything on the
//! controller side comes from `ada_controller` alone (see `counts.rs`).

mod counts;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    if std::env::var_os(ada_controller::ENV_SEGMENT).is_some() {
        counts::workload();
        return ExitCode::SUCCESS;
    }
    let traced = std::env::current_exe()
        .map_err(Into::into)
        .and_then(|me| counts::trace(Command::new(me)));
    match traced {
        Ok(traced) => {
            print!("{traced}");
            // The child's workload is known: say whether the counts match it.
            let mut exact = true;
            for (name, calls) in counts::expected_calls() {
                let counted = traced.table.functions.get(name).map_or(0, |s| s.calls);
                if counted != calls {
                    println!("{name}: counted {counted} calls, the workload made {calls}");
                    exact = false;
                }
            }
            if exact {
                println!("every call of the workload counted");
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("call_counts: {e}");
            ExitCode::FAILURE
        }
    }
}
