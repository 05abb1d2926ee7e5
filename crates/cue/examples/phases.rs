//! Profiling helper: `phases FILE EXPR N` compiles and exports FILE N times in-process and
//! prints the CPU time of each phase (compile, eval, validate, export of EXPR, drop), per run.
//! CPU time (from /proc/self/stat, 10 ms ticks) rather than wall time, so that a loaded
//! machine does not distort the split; use a large enough N.

use std::time::Duration;

/// CPU time (user + system) of this process so far.
struct Instant(Duration);

impl Instant {
    fn now() -> Instant {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // fields after the command name (which is in parentheses and may hold spaces)
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name
        let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
        Instant(Duration::from_millis(ticks * 10))
    }
    fn elapsed(&self) -> Duration {
        Instant::now().0.saturating_sub(self.0)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(file), Some(expr)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: phases FILE EXPR [N]");
        std::process::exit(2);
    };
    let n: u32 = args.get(3).and_then(|x| x.parse().ok()).unwrap_or(10);
    let Ok(src) = std::fs::read_to_string(file) else {
        eprintln!("{file}: cannot read");
        std::process::exit(2);
    };
    let mut t = [Duration::ZERO; 5];
    for _ in 0..n {
        let s = Instant::now();
        let p = match cue::Runtime::new().compile(file, &src) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        t[0] += s.elapsed();
        let s = Instant::now();
        let v = match p.eval() {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        t[1] += s.elapsed();
        let s = Instant::now();
        if let Err(e) = v.validate() {
            eprintln!("{e}");
            std::process::exit(1);
        }
        t[2] += s.elapsed();
        let s = Instant::now();
        let out = v.lookup(expr).map(|x| x.to_json_string(true));
        t[3] += s.elapsed();
        let s = Instant::now();
        drop((v, p, out));
        t[4] += s.elapsed();
    }
    let names = ["compile", "eval", "validate", "export", "drop"];
    let total: Duration = t.iter().sum();
    for (name, d) in names.iter().zip(t) {
        eprintln!("{name:>9}: {:?}", d / n);
    }
    eprintln!("{:>9}: {:?}", "total", total / n);
}
