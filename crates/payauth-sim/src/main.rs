//! `payauth-sim [--seeds N] [--steps M] [--seed S] [--subjects] [--trace]`: runs the
//! simulation and prints one summary line, then each violation with its
//! seed and the last events (`cargo xtask simulate` runs this in release).

use std::process::ExitCode;

const USAGE: &str = "usage: payauth-sim [--seeds N] [--steps M] [--seed S] [--subjects] [--trace]
  --seeds N   how many seeds (default 20; with --seed, from S on)
  --steps M   steps with faults per seed, before the calm phase (default 1000)
  --seed S    the first seed (alone: only that seed, to replay it)
  --subjects  the many-subjects mode (a Subjects set evicting under store faults)
  --trace     print every event of each seed";

struct Args {
    seeds: u64,
    steps: u64,
    first: u64,
    trace: bool,
    subjects: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        seeds: 20,
        steps: 1000,
        first: 0,
        trace: false,
        subjects: false,
    };
    let mut seeds = None;
    let mut seed = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number\n{USAGE}"))
        };
        match arg.as_str() {
            "--seeds" => seeds = Some(number("--seeds")?),
            "--steps" => args.steps = number("--steps")?,
            "--seed" => seed = Some(number("--seed")?),
            "--trace" => args.trace = true,
            "--subjects" => args.subjects = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    args.first = seed.unwrap_or(0);
    args.seeds = seeds.unwrap_or(if seed.is_some() { 1 } else { args.seeds });
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let mut summary = payauth_sim::Summary::default();
    for seed in args.first..args.first.saturating_add(args.seeds) {
        let report = if args.subjects {
            payauth_sim::run_subjects_seed(seed, args.steps, args.trace)
        } else {
            payauth_sim::run_seed(seed, args.steps, args.trace)
        };
        if let Some(full) = &report.full_trace {
            println!("== seed {seed}: {}", report.setup);
            for line in full {
                println!("{line}");
            }
        }
        summary.add(report);
    }
    println!("{}", summary.line());
    eprintln!("{}", summary.stats_line());
    for report in &summary.violations {
        print!("{}", payauth_sim::describe(report));
    }
    if summary.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
