//! Creates a segment, has a child process attach and register threads, and prints the registry.
//!
//! Run: `cargo run -p ada-registry --example registry_demo`

use ada_registry::{Registry, RegistryConfig, SlotOwner};
use ada_shm::{AttachOptions, SegmentName};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

const THREADS: usize = 3;

fn child(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let reg = Registry::attach(&SegmentName::parse(name)?, AttachOptions::default())?;
    let barrier = std::sync::Barrier::new(THREADS + 1);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                let registration = reg
                    .view()
                    .register(SlotOwner::current_thread())
                    .expect("registry has room");
                println!(
                    "child thread registered in slot {}",
                    registration.slot.index()
                );
                barrier.wait();
                barrier.wait();
                drop(registration); // hands the slot to the drain
            });
        }
        barrier.wait();
        println!("READY");
        std::io::stdout().flush().ok();
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        barrier.wait();
    });
    Ok(())
}

fn print_registry(reg: &Registry) {
    println!("  slot  state    pid      thread id");
    for v in reg.view().live_slots() {
        println!(
            "  {:>4}  {:<7}  {:<7}  {}",
            v.index,
            format!("{:?}", v.state),
            v.owner.pid,
            v.owner.thread_id
        );
    }
    let [free, claimed, active, exited, invalid] = reg.view().census();
    println!(
        "  census: {free} free, {claimed} claiming, {active} active, {exited} exited, {invalid} invalid"
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, name] = args.as_slice()
        && flag == "--child"
    {
        return child(name);
    }
    let config = RegistryConfig {
        capacity: 8,
        ..Default::default()
    };
    let reg = Registry::create(&config, &[])?;
    println!(
        "created segment {} ({} bytes, {} slots, {} KiB of shared memory per registered thread)",
        reg.segment().name(),
        reg.segment().len(),
        reg.capacity(),
        config.bytes_per_thread() / 1024
    );
    let mut kid = Command::new(std::env::current_exe()?)
        .args(["--child", reg.segment().name().as_str()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(kid.stdout.take().expect("piped")).lines();
    for line in lines.by_ref() {
        let line = line?;
        if line == "READY" {
            break;
        }
        println!("{line}");
    }
    println!(
        "registry while the child's threads run (child pid {}):",
        kid.id()
    );
    print_registry(&reg);
    drop(kid.stdin.take());
    for line in lines {
        println!("{}", line?);
    }
    kid.wait()?;
    println!("after the child's threads exited (slots wait for the drain to reclaim them):");
    print_registry(&reg);
    Ok(())
}
