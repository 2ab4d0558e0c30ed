//! tweetpipe's own small durable state, for what no server keeps for us:
//! - the Jetstream cursor: where a restart resumes (see [`super::watermark`] for which
//!   position is safe to keep), the instance it came from (a cursor is each instance's own
//!   clock, so resuming elsewhere rewinds further), and the dedupe keys of the safe events a
//!   restart is sent again (see [`super::keeper`]);
//! - the Twitter spend guard's post counts for the current UTC day and month (see
//!   [`super::budget`]).
//!
//! It is one JSON file, `state.json`, in the spill directory: beside the spill segments and
//! under the same `LOCK`, so that two producers can never share it, and moved or removed
//! together with the spill it belongs to. Readable on purpose: an operator may look at the
//! cursor, or move the file away to start from the live tip.
//!
//! Written by atomic replacement: a temporary file is written and fsynced, renamed over the
//! old one, and the directory fsynced, so after a crash or a power cut the file is either the
//! old state or the new one, never a torn mix. A damaged or unknown file stops the run with a
//! configuration error rather than being ignored: starting without the cursor would silently
//! skip or repeat events. Reading and writing are blocking file I/O: call them off the
//! runtime's worker threads (at start, and from a writer task every second or so).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::budget::{first_of_month, PostCounts};
use crate::error::{Classify, Kind};

/// The file's name in the spill directory.
pub(crate) const FILE_NAME: &str = "state.json";
/// The format this version writes and reads.
const VERSION: u32 = 1;

/// Everything kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct State {
    pub jetstream: Option<JetstreamPosition>,
    pub posts: Option<PostCounts>,
}

/// Where Jetstream reading resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JetstreamPosition {
    /// Every event read before the one with this `time_us` is safe.
    pub time_us: i64,
    /// The instance that stamped it (`wss://…/subscribe`), if known.
    pub instance: Option<String>,
    /// The dedupe keys of the safe events a restart there would be sent again.
    pub recent: Vec<u64>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum StateError {
    #[error("cannot read the state file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the state file {} is not usable: {why}. It holds the Jetstream cursor and the post \
         counts of the spend guard: restore it, or move it away to start without them \
         (Jetstream then starts at the live tip, the counts at zero)",
        path.display()
    )]
    Damaged { path: PathBuf, why: String },
    #[error("cannot write the state file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Classify for StateError {
    /// A damaged file is for the user to sort out (exit code 2); I/O errors are runtime ones.
    fn kind(&self) -> Kind {
        match self {
            StateError::Damaged { .. } => Kind::Usage,
            _ => Kind::Runtime,
        }
    }
}

/// The state file of one spill directory.
#[derive(Debug, Clone)]
pub(crate) struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state file in `spill_dir`.
    pub(crate) fn in_dir(spill_dir: &Path) -> Self {
        StateFile {
            path: spill_dir.join(FILE_NAME),
        }
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The kept state; empty when there is no file yet.
    pub(crate) fn load(&self) -> Result<State, StateError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(source) => {
                return Err(StateError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let damaged = |why: String| StateError::Damaged {
            path: self.path.clone(),
            why,
        };
        let wire: Wire = serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
        if wire.version != VERSION {
            return Err(damaged(format!(
                "format version {}, this tweetpipe reads version {VERSION}",
                wire.version
            )));
        }
        let posts = match wire.posts {
            None => None,
            Some(p) => {
                let day = NaiveDate::parse_from_str(&p.day, "%Y-%m-%d")
                    .map_err(|e| damaged(format!("posts.day {:?}: {e}", p.day)))?;
                let month = NaiveDate::parse_from_str(&format!("{}-01", p.month), "%Y-%m-%d")
                    .map_err(|e| damaged(format!("posts.month {:?}: {e}", p.month)))?;
                Some(PostCounts {
                    day,
                    day_posts: p.day_posts,
                    month,
                    month_posts: p.month_posts,
                })
            }
        };
        Ok(State {
            jetstream: wire.jetstream.map(|j| JetstreamPosition {
                time_us: j.cursor_us,
                instance: j.instance,
                recent: j.recent,
            }),
            posts,
        })
    }

    /// Replaces the file with `state`, atomically and durably.
    pub(crate) fn save(&self, state: &State) -> Result<(), StateError> {
        let wire = Wire {
            version: VERSION,
            jetstream: state.jetstream.as_ref().map(|j| WireJetstream {
                cursor_us: j.time_us,
                instance: j.instance.clone(),
                recent: j.recent.clone(),
            }),
            posts: state.posts.as_ref().map(|p| WirePosts {
                day: p.day.format("%Y-%m-%d").to_string(),
                day_posts: p.day_posts,
                month: first_of_month(p.month).format("%Y-%m").to_string(),
                month_posts: p.month_posts,
            }),
        };
        let mut bytes = serde_json::to_vec_pretty(&wire).expect("serializing to memory");
        bytes.push(b'\n');
        let write_err = |source| StateError::Write {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension("json.tmp");
        let mut f = File::create(&tmp).map_err(write_err)?;
        f.write_all(&bytes).map_err(write_err)?;
        f.sync_all().map_err(write_err)?;
        drop(f);
        fs::rename(&tmp, &self.path).map_err(write_err)?;
        // The rename itself is durable only once the directory is.
        let dir = self.path.parent().unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(write_err)?;
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jetstream: Option<WireJetstream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    posts: Option<WirePosts>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireJetstream {
    cursor_us: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instance: Option<String>,
    /// Dedupe keys (see `produce::dedup::key`), one number each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    recent: Vec<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WirePosts {
    /// "2026-12-04"
    day: String,
    day_posts: u64,
    /// "2026-12"
    month: String,
    month_posts: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        let day = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        State {
            jetstream: Some(JetstreamPosition {
                time_us: 1_783_175_888_090_631,
                instance: Some("wss://jetstream1.us-east.bsky.network/subscribe".into()),
                recent: vec![7, u64::MAX - 1],
            }),
            posts: Some(PostCounts {
                day,
                day_posts: 1234,
                month: first_of_month(day),
                month_posts: 56_789,
            }),
        }
    }

    #[test]
    fn round_trip_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let f = StateFile::in_dir(dir.path());
        assert_eq!(f.load().unwrap(), State::default(), "no file yet: empty");
        f.save(&state()).unwrap();
        assert_eq!(f.load().unwrap(), state());
        let text = std::fs::read_to_string(f.path()).unwrap();
        assert!(text.contains("\"cursor_us\": 1783175888090631"), "{text}");
        assert!(text.contains("\"month\": \"2026-12\""), "{text}");
        // Replaced, not appended; no temporary file left.
        let mut s = state();
        s.jetstream.as_mut().unwrap().time_us += 1;
        s.posts = None;
        f.save(&s).unwrap();
        assert_eq!(f.load().unwrap(), s);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![FILE_NAME]);
    }

    #[test]
    fn a_torn_write_leaves_the_old_state() {
        let dir = tempfile::tempdir().unwrap();
        let f = StateFile::in_dir(dir.path());
        f.save(&state()).unwrap();
        // A crash after writing part of the temporary file, before the rename.
        std::fs::write(dir.path().join("state.json.tmp"), b"{\"version\":1,\"jets").unwrap();
        assert_eq!(f.load().unwrap(), state());
        // The next save goes over the leftover.
        f.save(&State::default()).unwrap();
        assert_eq!(f.load().unwrap(), State::default());
    }

    #[test]
    fn a_damaged_file_is_an_error_that_names_it_and_the_way_out() {
        let dir = tempfile::tempdir().unwrap();
        let f = StateFile::in_dir(dir.path());
        for bad in [
            &b""[..],
            b"{\"version\":1,\"jetstream\":{\"cursor_us\":\"soon\"}}",
            b"{\"version\":2}",
            b"{\"version\":1,\"posts\":{\"day\":\"2026-13-01\",\"day_posts\":1,\"month\":\"2026-12\",\"month_posts\":1}}",
            b"{\"version\":1,\"cursor\":5}",
        ] {
            std::fs::write(f.path(), bad).unwrap();
            let err = f.load().unwrap_err();
            assert_eq!(err.kind(), Kind::Usage);
            let msg = err.to_string();
            assert!(msg.contains(&f.path().display().to_string()), "{msg}");
            assert!(msg.contains("move it away"), "{msg}");
        }
    }

    #[test]
    fn write_errors_name_the_file() {
        let f = StateFile::in_dir(Path::new("/nonexistent/spill"));
        let err = f.save(&state()).unwrap_err();
        assert_eq!(err.kind(), Kind::Runtime);
        assert!(err.to_string().contains("/nonexistent/spill/state.json"));
    }
}
