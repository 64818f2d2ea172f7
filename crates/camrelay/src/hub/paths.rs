//! Per-path rules (MediaMTX's `paths:`): which names exist beyond the configured streams, where their
//! source comes from, and the per-stream options the hub enforces.
//!
//! The hub reads no server config: the app turns the config's `paths:` entries into [`PathRules`] and
//! hands them over ([`Hub::set_path_rules`], again on every reload). A go2rtc config has none: every
//! option keeps the hub's default and publishing follows `allow_create` alone.
//!
//! - **Lookup** (MediaMTX's): a literal name first, then `~regex` entries and `all_others` in file
//!   order; the first that matches.
//! - **Streams from a rule.** A reader asking for a name that no stream has but a rule with a source
//!   covers gets a stream created on demand, its source the rule's with `$G1`, `$G2`... replaced by
//!   the regular expression's groups (and `$MTX_QUERY` by nothing: the hub has no query to give). The
//!   stream goes again once no reader has used it for its linger (`sourceOnDemandCloseAfter`).
//! - **Options**: `maxReaders` (readers of one stream, over every protocol), `overridePublisher`
//!   ([`super::publish`]), the start wait and linger of an on-demand source.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{Hub, HubError, Registry, Stream};

/// A stream's options from its path rule. The defaults (no rule) are the hub's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathOptions {
    /// Most readers at once; 0 is no limit.
    pub max_readers: usize,
    /// A second publisher: `None` adds it after the first (go2rtc); `Some(true)` replaces the current
    /// one (MediaMTX's default); `Some(false)` refuses it.
    pub override_publisher: Option<bool>,
    /// How long a reader waits for an unreachable source (`hub.start_timeout` when `None`).
    pub start_timeout: Option<Duration>,
    /// How long a source keeps running after its last reader (`hub.linger` when `None`).
    pub linger: Option<Duration>,
    /// MediaMTX's `alwaysAvailable`: the offline slate readers get while no publisher is there.
    pub always_available: Option<Arc<crate::sources::offline::Slate>>,
    /// MediaMTX's `fallback`: where RTSP readers go while the path has nothing to read (a `/path` or
    /// an `rtsp(s)://` URL); empty for none.
    pub fallback: String,
}

/// What a rule matches.
#[derive(Clone, Debug)]
pub enum PathPattern {
    /// A literal name.
    Name(String),
    /// `~regex`: matches anywhere unless anchored (as MediaMTX's); groups become `$G1`...
    Regex(regex::Regex),
    /// `all_others` (and MediaMTX's older `all`): any name.
    Any,
}

#[derive(Clone, Debug)]
pub struct PathRule {
    /// As configured: `cam`, `~^cam(\d+)$`, `all_others`.
    pub name: String,
    pub pattern: PathPattern,
    /// The source URL template (our schemes); empty for `publisher`.
    pub source: String,
    pub options: PathOptions,
}

impl PathRule {
    /// `name` as MediaMTX writes it (`~` before a regular expression). None for a bad expression
    /// (the config loader has refused those already).
    pub fn new(name: &str, source: &str, options: PathOptions) -> Option<PathRule> {
        let pattern = match name.strip_prefix('~') {
            Some(re) => PathPattern::Regex(regex::Regex::new(re).ok()?),
            None if name == "all_others" || name == "all" => PathPattern::Any,
            None => PathPattern::Name(name.to_string()),
        };
        Some(PathRule { name: name.to_string(), pattern, source: source.to_string(), options })
    }

    /// Whether publishers may push to the names this rule covers (`source: publisher`).
    pub fn takes_publishers(&self) -> bool {
        self.source.is_empty()
    }
}

/// The rules of a config, in file order.
#[derive(Clone, Debug, Default)]
pub struct PathRules {
    pub rules: Vec<PathRule>,
    /// MediaMTX's: a name that no rule covers takes no publisher, and a path with a source takes none
    /// either. Off for go2rtc configs (publishing follows `allow_create`).
    pub publish_needs_rule: bool,
}

impl PathRules {
    /// The rule for `name` and its regular expression's groups (`$G1` first).
    pub fn find(&self, name: &str) -> Option<(&PathRule, Vec<String>)> {
        if let Some(r) = self.rules.iter().find(|r| matches!(&r.pattern, PathPattern::Name(n) if n == name)) {
            return Some((r, Vec::new()));
        }
        self.rules.iter().find_map(|r| match &r.pattern {
            PathPattern::Name(_) => None,
            PathPattern::Any => Some((r, Vec::new())),
            PathPattern::Regex(re) => re.captures(name).map(|c| {
                let groups = c.iter().skip(1).map(|g| g.map(|g| g.as_str().to_string()).unwrap_or_default());
                (r, groups.collect())
            }),
        })
    }

    /// The options of stream `name` (the defaults when no rule covers it).
    pub fn options(&self, name: &str) -> PathOptions {
        self.find(name).map(|(r, _)| r.options.clone()).unwrap_or_default()
    }
}

/// MediaMTX's source variables: `$G1`, `$G2`... (the highest first, so `$G1` does not eat `$G10`)
/// and `$MTX_QUERY` (empty here).
pub fn substitute(template: &str, groups: &[String]) -> String {
    let mut out = template.replace("$MTX_QUERY", "");
    for (i, g) in groups.iter().enumerate().rev() {
        out = out.replace(&format!("$G{}", i + 1), g);
    }
    out
}

impl Hub {
    /// Makes `rules` the running path rules (at start and on every reload). Streams already running
    /// keep their sources; their limits follow the new rules at once.
    pub fn set_path_rules(&self, rules: PathRules) {
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
    }

    pub fn path_rules(&self) -> Arc<PathRules> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The options of stream `name`.
    pub fn path_options(&self, name: &str) -> PathOptions {
        self.path_rules().options(name)
    }

    /// How long a source of stream `name` keeps running after its last reader.
    pub(super) fn linger_of(&self, name: &str) -> Duration {
        self.path_options(name).linger.unwrap_or(self.settings.linger)
    }

    /// The stream a reader of `name` reads: the one in the table, or one made on demand from the
    /// first rule with a source that covers `name` (removed again once idle, see the module docs).
    pub(super) fn stream_for_reader(&self, name: &str) -> Result<Arc<Stream>, HubError> {
        if let Some(s) = self.get(name) {
            return Ok(s);
        }
        let rules = self.path_rules();
        let Some((rule, groups)) = rules.find(name) else { return Err(HubError::NotFound(name.to_string())) };
        if rule.takes_publishers() && self.registry.events.get().is_some_and(|e| e.publishes_on_demand(name)) {
            // MediaMTX's runOnDemand on a pattern: a stream for the reader to wait on, which the
            // command's publisher joins; it goes like a publisher's once nothing uses it.
            let mut streams = self.registry.write_streams();
            let stream = streams
                .entry(name.to_string())
                .or_insert_with(|| Arc::new(Stream::new(name, Some(Arc::downgrade(&self.registry)))));
            return Ok(stream.clone());
        }
        if rule.source.is_empty() || rule.source == "redirect" || matches!(rule.pattern, PathPattern::Name(_)) {
            return Err(HubError::NotFound(name.to_string()));
        }
        let url = substitute(&rule.source, &groups);
        let linger = rule.options.linger.unwrap_or(self.settings.linger);
        let source = self.make_source(&url)?;
        let mut streams = self.registry.write_streams();
        // Another reader may have made it meanwhile.
        if let Some(s) = streams.get(name) {
            return Ok(s.clone());
        }
        let mut stream = Stream::new(name, Some(Arc::downgrade(&self.registry)));
        stream.idle_removal = Some(linger);
        let producer = super::Producer::pulled(&url, source, linger, self.settings.gop_cache_bytes);
        self.report_ready(name, &producer);
        stream.add_producer(producer);
        let stream = Arc::new(stream);
        streams.insert(name.to_string(), stream.clone());
        tracing::info!(stream = %name, rule = %rule.name, source = %crate::secrets::mask_url(&url), "stream created for a reader by its path rule");
        Ok(stream)
    }
}

/// Readers that count against `maxReaders`: not the preload that keeps a `sourceOnDemand: false`
/// source connected (MediaMTX's source is no reader either).
fn counted(readers: &[Arc<super::ReaderShared>]) -> usize {
    readers.iter().filter(|r| r.protocol() != "preload").count()
}

/// Adds `shared` to the stream's readers unless that would pass `max` (0: no limit).
pub(super) fn admit_reader(stream: &Stream, shared: &Arc<super::ReaderShared>, max: usize) -> Result<(), HubError> {
    let mut readers = stream.readers.lock().unwrap_or_else(|e| e.into_inner());
    if max > 0 && shared.protocol() != "preload" && counted(&readers) >= max {
        return Err(HubError::TooManyReaders { stream: stream.name.clone(), max });
    }
    readers.push(shared.clone());
    Ok(())
}

/// The early check of [`admit_reader`], before any source is dialled.
pub(super) fn check_readers(stream: &Stream, max: usize) -> Result<(), HubError> {
    if max > 0 && counted(&stream.readers()) >= max {
        return Err(HubError::TooManyReaders { stream: stream.name.clone(), max });
    }
    Ok(())
}

/// Dropped when a subscription attempt ends: a stream made from a rule that got no reader (the
/// source failed, the codecs did not match) goes after its linger like an idle one.
pub(super) struct IdleCheck<'a>(pub &'a Stream);

impl Drop for IdleCheck<'_> {
    fn drop(&mut self) {
        if self.0.readers().is_empty() {
            schedule_idle_removal(self.0);
        }
    }
}

/// For a stream made from a rule with no reader left: after its linger, removes it (and stops its
/// source) unless a reader came back or it was replaced meanwhile.
pub(super) fn schedule_idle_removal(stream: &Stream) {
    let (Some(linger), Some(registry)) = (stream.idle_removal, stream.created_in.clone()) else { return };
    let name = stream.name.clone();
    let ptr = stream as *const Stream as usize;
    let remove = move |registry: Weak<Registry>| {
        let Some(registry) = registry.upgrade() else { return };
        let removed = {
            let mut streams = registry.write_streams();
            let idle = streams.get(&name).is_some_and(|s| Arc::as_ptr(s) as usize == ptr && s.readers().is_empty());
            if idle {
                streams.remove(&name)
            } else {
                None
            }
        };
        if let Some(s) = removed {
            s.stop_playback();
            for p in s.producers() {
                p.shutdown();
            }
            tracing::info!(stream = %name, "stream removed: made for readers by its path rule, none left");
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(rt) if !linger.is_zero() => {
            rt.spawn(async move {
                tokio::time::sleep(linger).await;
                remove(registry);
            });
        }
        _ => remove(registry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> PathRules {
        let opts = PathOptions { max_readers: 2, ..Default::default() };
        PathRules {
            rules: vec![
                PathRule::new("~^cam(\\d+)_(\\w+)$", "rtsp://10.0.0.$G1/$G2", opts.clone()).unwrap(),
                PathRule::new("cam1_main", "rtsp://literal/", PathOptions::default()).unwrap(),
                PathRule::new("all_others", "", PathOptions::default()).unwrap(),
            ],
            publish_needs_rule: true,
        }
    }

    #[test]
    fn literal_names_first_then_patterns_in_order() {
        let r = rules();
        assert_eq!(r.find("cam1_main").unwrap().0.source, "rtsp://literal/");
        let (rule, groups) = r.find("cam5_sub").unwrap();
        assert_eq!(substitute(&rule.source, &groups), "rtsp://10.0.0.5/sub");
        assert_eq!(r.options("cam5_sub").max_readers, 2);
        assert!(r.find("other").unwrap().0.takes_publishers());
        assert_eq!(PathRules::default().options("x"), PathOptions::default());
    }

    #[test]
    fn substitution_of_many_groups_and_query() {
        let groups: Vec<String> = (1..=10).map(|i| format!("g{i}")).collect();
        assert_eq!(substitute("x/$G10/$G1?$MTX_QUERY", &groups), "x/g10/g1?");
    }
}
