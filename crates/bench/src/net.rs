//! `--net veth`: the load client in its own network namespace, joined to the server's by a veth pair,
//! with Receive Packet Steering so that the client's TCP receive processing runs on the client's CPU
//! instead of inside the server's `writev` (as it does on loopback).
//!
//! Layout (2 CPUs): the server is pinned to CPU 0, the bench (publisher and readers) to CPU 1. RPS on
//! the client's veth end steers what the server sends to CPU 1; RPS on the server's end steers the
//! client's ACKs and requests to CPU 0, where the server's own NIC would take them on a real network.
//! Nothing is routed: the namespace has only the veth's /30 and its loopback, and the root namespace
//! gets only the /30's link route, so no packet can leave the machine.
//!
//! The namespace and the veth pair are removed when the bench ends: on return, on panic (a panic
//! hook) and on SIGINT/SIGTERM/SIGHUP (a thread waiting for them); a namespace left by a killed bench
//! (`kill -9`) is removed by the next run, which deletes every `crbench-PID` whose PID is gone.

use std::process::Command;
use std::sync::Mutex;

/// What was created, for the clean-up.
struct Created {
    netns: String,
    host_dev: String,
    server_pid: Option<u32>,
}

static CREATED: Mutex<Option<Created>> = Mutex::new(None);

pub struct Veth {
    /// Address of the server's end (the server listens here).
    pub server_ip: String,
    pub client_ip: String,
    pub netns: String,
    pub host_dev: String,
    pub client_dev: String,
    pub server_cpu: usize,
    pub client_cpu: usize,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0]).args(&args[1..]).output().map_err(|e| format!("{}: {e}", args[0]))?;
    if !out.status.success() {
        return Err(format!("`{}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

/// Removes what [`Veth::create`] made (idempotent), and stops the server if it is still running.
pub fn cleanup() {
    let created = CREATED.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(c) = created {
        if let Some(pid) = c.server_pid {
            // SAFETY: kill(2) on the server child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        // Deleting one end of a veth pair deletes both.
        let _ = run(&["ip", "link", "del", &c.host_dev]);
        let _ = run(&["ip", "netns", "del", &c.netns]);
    }
}

/// Namespaces left by earlier benches that were killed without a chance to clean up.
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name.strip_prefix("crbench-").and_then(|p| p.parse::<u32>().ok()) else { continue };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run(&["ip", "link", "del", &format!("crbs{pid}")]);
            let _ = run(&["ip", "netns", "del", name]);
        }
    }
}

fn set_affinity(cpu: usize) -> Result<(), String> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_setaffinity(0) applies to this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!("sched_setaffinity: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

impl Veth {
    /// Creates the namespace and the veth pair, with RPS on both ends. Needs root and 2 CPUs.
    pub fn create() -> Result<Veth, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("--net veth needs root (ip netns, ip link, sysfs)".into());
        }
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        if cpus < 2 {
            return Err("--net veth needs 2 CPUs (server on one, load client on the other)".into());
        }
        install_cleanup_handlers();
        remove_stale();
        let pid = std::process::id();
        let netns = format!("crbench-{pid}");
        let host_dev = format!("crbs{pid}");
        let client_dev = format!("crbc{pid}");
        // A private /30 in 10.213.0.0/16, which no interface of this machine may already use.
        let used = Command::new("ip").args(["-4", "addr"]).output().map(|o| o.stdout).unwrap_or_default();
        if String::from_utf8_lossy(&used).contains("inet 10.213.") {
            return Err("10.213.0.0/16 is in use on this machine; --net veth needs it free".into());
        }
        let third = pid % 256;
        let (server_ip, client_ip) = (format!("10.213.{third}.1"), format!("10.213.{third}.2"));
        *CREATED.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Created { netns: netns.clone(), host_dev: host_dev.clone(), server_pid: None });
        let v = Veth { server_ip, client_ip, netns, host_dev, client_dev, server_cpu: 0, client_cpu: 1 };
        if let Err(e) = v.setup() {
            cleanup();
            return Err(e);
        }
        Ok(v)
    }

    fn setup(&self) -> Result<(), String> {
        let (ns, host, client) = (&self.netns, &self.host_dev, &self.client_dev);
        run(&["ip", "netns", "add", ns])?;
        run(&["ip", "link", "add", host, "type", "veth", "peer", "name", client])?;
        run(&["ip", "link", "set", client, "netns", ns])?;
        run(&["ip", "addr", "add", &format!("{}/30", self.server_ip), "dev", host])?;
        run(&["ip", "link", "set", host, "up"])?;
        run(&["ip", "-n", ns, "addr", "add", &format!("{}/30", self.client_ip), "dev", client])?;
        run(&["ip", "-n", ns, "link", "set", client, "up"])?;
        run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        // RPS: packets arriving on the client's end are processed on the client's CPU, those arriving
        // on the server's end (ACKs, requests, the publisher's media) on the server's.
        let client_mask = format!("{:x}", 1u64 << self.client_cpu);
        let server_mask = format!("{:x}", 1u64 << self.server_cpu);
        let rps = format!("echo {client_mask} > /sys/class/net/{client}/queues/rx-0/rps_cpus");
        run(&["ip", "netns", "exec", ns, "sh", "-c", &rps])?;
        std::fs::write(format!("/sys/class/net/{host}/queues/rx-0/rps_cpus"), &server_mask)
            .map_err(|e| format!("rps_cpus of {host}: {e}"))?;
        Ok(())
    }

    /// The RPS masks as the kernel reports them (client end, server end), for the report.
    pub fn rps_masks(&self) -> (String, String) {
        let client = Command::new("ip")
            .args(["netns", "exec", &self.netns, "cat"])
            .arg(format!("/sys/class/net/{}/queues/rx-0/rps_cpus", self.client_dev))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let server = std::fs::read_to_string(format!("/sys/class/net/{}/queues/rx-0/rps_cpus", self.host_dev))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        (client, server)
    }

    /// Records the server's pid so that a signal or panic also stops it.
    pub fn set_server_pid(&self, pid: u32) {
        if let Some(c) = CREATED.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            c.server_pid = Some(pid);
        }
    }

    /// Moves the calling thread into the client's namespace and onto the client's CPU. Call it on the
    /// main thread before any thread of the load client exists: threads inherit both.
    pub fn enter_client_side(&self) -> Result<(), String> {
        let path = format!("/var/run/netns/{}", self.netns);
        let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        use std::os::fd::AsRawFd;
        // SAFETY: setns(2) on an open namespace file descriptor; affects only the calling thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(format!("setns: {}", std::io::Error::last_os_error()));
        }
        set_affinity(self.client_cpu)
    }
}

/// Runs in the server child between fork and exec: pins it (all its threads) to `cpu`.
pub fn pin_child(cmd: &mut Command, cpu: usize) {
    use std::os::unix::process::CommandExt;
    // SAFETY: sched_setaffinity is async-signal-safe and touches nothing of the parent.
    unsafe {
        cmd.pre_exec(move || set_affinity(cpu).map_err(std::io::Error::other));
    }
}

/// Clean-up on panic and on SIGINT, SIGTERM and SIGHUP. The signals are blocked in this thread (and so
/// in every thread created after it) and taken by a thread of their own.
fn install_cleanup_handlers() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        cleanup();
        previous(info);
    }));
    // SAFETY: building a signal set and blocking it for this thread; sigwait in the thread below.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let set = set;
        std::thread::spawn(move || {
            let mut sig = 0;
            libc::sigwait(&set, &mut sig);
            eprintln!("signal {sig}: removing the bench's network namespace");
            cleanup();
            std::process::exit(128 + sig);
        });
    }
}
