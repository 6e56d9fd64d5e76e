//! The process metrics Prometheus expects of every exporter (resident and
//! virtual memory, CPU seconds, open and allowed file descriptors, threads,
//! start time), read from `/proc/self` at each scrape. On systems without
//! `/proc` they are left out rather than shown as zero.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;

use super::encode_gauge;

/// Reads the process's figures each time `/metrics` is scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessCollector;

/// One reading of the process's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub threads: u64,
    /// Seconds since the Unix epoch.
    pub start_time_seconds: f64,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let Some(stats) = ProcessStats::read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(stats.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            cpu.metric_type(),
        )?)?;
        encode_gauge(
            &mut encoder,
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            stats.resident_bytes,
        )?;
        encode_gauge(
            &mut encoder,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            stats.virtual_bytes,
        )?;
        encode_gauge(
            &mut encoder,
            "process_threads",
            "Number of OS threads in the process.",
            stats.threads,
        )?;
        encode_gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            stats.start_time_seconds,
        )?;
        if let Some(open) = stats.open_fds {
            encode_gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors.",
                open,
            )?;
        }
        if let Some(max) = stats.max_fds {
            encode_gauge(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors.",
                max,
            )?;
        }
        Ok(())
    }
}

impl ProcessStats {
    /// `None` where `/proc/self` cannot be read (another system, or a
    /// sandbox that hides it): a scrape then shows the other metrics.
    #[cfg(target_os = "linux")]
    pub fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let system = std::fs::read_to_string("/proc/stat").ok()?;
        let clock = Clock {
            ticks_per_second: rustix::param::clock_ticks_per_second(),
            page_size: u64::try_from(rustix::param::page_size()).ok()?,
            boot_time: boot_time(&system)?,
        };
        let mut stats = parse_stat(&stat, &clock)?;
        // Counts the folder's own descriptor too, as other exporters do.
        stats.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as u64);
        stats.max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|limits| max_open_files(&limits));
        Some(stats)
    }

    #[cfg(not(target_os = "linux"))]
    pub fn read() -> Option<ProcessStats> {
        None
    }
}

/// What turns `/proc/self/stat`'s units into seconds and bytes.
#[derive(Debug, Clone, Copy)]
struct Clock {
    ticks_per_second: u64,
    page_size: u64,
    /// Seconds since the Unix epoch.
    boot_time: u64,
}

/// Reads `/proc/self/stat` (proc(5)). The command name in parentheses may
/// hold spaces and parentheses itself, so fields are counted from the last
/// `)`; the first after it is field 3, the state.
fn parse_stat(text: &str, clock: &Clock) -> Option<ProcessStats> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |number: usize| -> Option<u64> { fields.get(number - 3)?.parse().ok() };
    let ticks = clock.ticks_per_second.max(1) as f64;
    let cpu_ticks = field(14)? + field(15)?;
    Some(ProcessStats {
        cpu_seconds: cpu_ticks as f64 / ticks,
        threads: field(20)?,
        start_time_seconds: clock.boot_time as f64 + field(22)? as f64 / ticks,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)?.saturating_mul(clock.page_size),
        open_fds: None,
        max_fds: None,
    })
}

/// The `btime` line of `/proc/stat`: when the system booted.
fn boot_time(system: &str) -> Option<u64> {
    system
        .lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|seconds| seconds.trim().parse().ok())
}

/// The soft limit on open files from `/proc/self/limits`; `None` when it
/// is unlimited.
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCK: Clock = Clock {
        ticks_per_second: 100,
        page_size: 4096,
        boot_time: 1_700_000_000,
    };

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        // A command name with a space and a parenthesis of its own.
        let line = "4242 (shoulder (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    250 50 0 0 20 0 7 0 12345 123456789 2560 18446744073709551615 \
                    1 1 0 0 0 0 0 4096 17472 0 0 0 17 1 0 0 0 0 0";
        let stats = parse_stat(line, &CLOCK).expect("parsed");
        assert_eq!(stats.cpu_seconds, 3.0, "(250 + 50) ticks");
        assert_eq!(stats.threads, 7);
        assert_eq!(stats.start_time_seconds, 1_700_000_123.45);
        assert_eq!(stats.virtual_bytes, 123_456_789);
        assert_eq!(stats.resident_bytes, 2560 * 4096);
    }

    #[test]
    fn a_truncated_stat_line_reads_as_nothing() {
        assert_eq!(parse_stat("4242 (shoulder) S 1 2 3", &CLOCK), None);
        assert_eq!(parse_stat("", &CLOCK), None);
    }

    #[test]
    fn boot_time_and_the_open_files_limit_are_found_by_name() {
        let system = "cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n";
        assert_eq!(boot_time(system), Some(1_700_000_000));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max processes             63704                63704                processes\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(max_open_files(unlimited), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reads_as_alive() {
        let stats = ProcessStats::read().expect("/proc/self is readable");
        assert!(stats.resident_bytes > 1024 * 1024, "{stats:?}");
        assert!(stats.threads >= 1, "{stats:?}");
        assert!(stats.open_fds.is_some_and(|n| n >= 3), "{stats:?}");
        // The wall clock: the process started in real time.
        let now = crate::clock::Clock::system().now().timestamp() as f64;
        assert!(
            stats.start_time_seconds <= now + 1.0 && stats.start_time_seconds > now - 86_400.0,
            "{stats:?}"
        );
    }
}
