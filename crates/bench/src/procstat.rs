//! CPU and memory of a process, from /proc.

/// utime + stime of a process in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let (user, system) = times(pid);
    user + system
}

/// utime of a process in seconds (time in our code, not in the kernel).
pub fn user_seconds(pid: u32) -> f64 {
    times(pid).0
}

fn times(pid: u32) -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return (0.0, 0.0) };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat; index 11 and 12 after the ')'.
    (ticks(11) / clock_ticks(), ticks(12) / clock_ticks())
}

fn clock_ticks() -> f64 {
    // getconf CLK_TCK is 100 on every Linux we run on.
    100.0
}

/// Resident set size in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return 0 };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Per CPU: (ticks in softirq, all ticks) from /proc/stat, to see on which CPU receive processing ran.
pub fn cpu_softirq_ticks() -> Vec<(u64, u64)> {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else { return Vec::new() };
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(|b| b.is_ascii_digit()))
        .map(|l| {
            let v: Vec<u64> = l.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
            // user nice system idle iowait irq softirq steal ...
            (v.get(6).copied().unwrap_or(0), v.iter().take(8).sum())
        })
        .collect()
}
