//! The configuration directory in Secret mode (`--config.kubernetes-secret`):
//! each key of the Secret becomes a file beside `--config.file`. A key
//! ending in `.zst` is zstd-compressed (the operator compresses, so that a
//! large fleet's configuration fits the 1 MiB limit of a Secret) and
//! becomes the file without that suffix.
//!
//! Files are replaced atomically (temporary file in the same directory, then
//! rename), so a reload never reads half a file. Only files this process wrote
//! are ever deleted: the directory may hold other things.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Writes Secret data into one directory and remembers what it wrote.
#[derive(Debug)]
pub struct ConfigDir {
    dir: PathBuf,
    /// File names written by earlier syncs, the only ones ever deleted.
    written: BTreeSet<String>,
}

impl ConfigDir {
    pub fn new(dir: PathBuf) -> ConfigDir {
        ConfigDir { dir, written: BTreeSet::new() }
    }

    /// Makes the directory hold `data`: writes every valid key as a file and
    /// deletes the files of keys an earlier sync wrote that are gone now. A
    /// failing key does not stop the others.
    pub fn sync(&mut self, data: &BTreeMap<String, Vec<u8>>) -> SyncReport {
        let mut report = SyncReport::default();
        if let Err(e) = std::fs::create_dir_all(&self.dir) {
            report.failed.push(format!("creating the configuration directory {}: {e}", self.dir.display()));
            return report;
        }
        let mut wanted = BTreeSet::new();
        for (key, value) in data {
            if let Err(why) = check_key(key) {
                report.skipped.push(format!("key {key:?} skipped: {why}"));
                continue;
            }
            let (name, content) = match key.strip_suffix(".zst") {
                Some(name) if check_key(name).is_ok() => match decompress(value) {
                    Ok(v) => (name.to_string(), std::borrow::Cow::Owned(v)),
                    Err(e) => {
                        report.failed.push(format!("key {key:?}: {e}"));
                        continue;
                    }
                },
                _ => (key.clone(), std::borrow::Cow::Borrowed(value.as_slice())),
            };
            wanted.insert(name.clone());
            match write_atomic(&self.dir, &name, &content) {
                Ok(()) => {
                    self.written.insert(name);
                }
                Err(e) => report.failed.push(format!("key {key:?}: writing {}: {e}", self.dir.join(&name).display())),
            }
        }
        let gone: Vec<String> = self.written.iter().filter(|k| !wanted.contains(*k)).cloned().collect();
        for key in gone {
            let file = self.dir.join(&key);
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    report.failed.push(format!("key {key:?} is gone but deleting {} failed: {e}", file.display()));
                }
                _ => {
                    self.written.remove(&key);
                }
            }
        }
        report
    }
}

/// What a [`ConfigDir::sync`] could not do, one message per key naming the
/// key (and the file, for I/O errors).
#[derive(Debug, Default)]
pub struct SyncReport {
    /// Keys that cannot be file names: left out, by design.
    pub skipped: Vec<String>,
    /// Writes or deletions that failed: the directory does not hold the data.
    pub failed: Vec<String>,
}

/// Largest file a compressed key may expand to (a guard against a
/// decompression bomb; real configurations are far smaller).
const MAX_DECOMPRESSED: usize = 256 << 20;

fn decompress(value: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let decoder = zstd::stream::read::Decoder::new(value).map_err(|e| format!("not zstd data: {e}"))?;
    let mut out = Vec::new();
    decoder.take(MAX_DECOMPRESSED as u64 + 1).read_to_end(&mut out).map_err(|e| format!("not valid zstd data: {e}"))?;
    if out.len() > MAX_DECOMPRESSED {
        return Err(format!("expands to more than {} MiB", MAX_DECOMPRESSED >> 20));
    }
    Ok(out)
}

/// A key must name a file directly in the directory.
fn check_key(key: &str) -> Result<(), &'static str> {
    match key {
        "" => Err("empty"),
        "." | ".." => Err("not a file name"),
        k if k.contains('/') => Err("contains '/'"),
        k if k.contains('\0') => Err("contains a NUL byte"),
        _ => Ok(()),
    }
}

/// Writes `dir/name` by renaming a fully written temporary file over it.
fn write_atomic(dir: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.hearth-tmp"));
    let result = std::fs::write(&tmp, value).and_then(|()| std::fs::rename(&tmp, dir.join(name)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(entries: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        entries.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect()
    }

    fn files(dir: &Path) -> BTreeMap<String, String> {
        std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| {
                let e = e.expect("entry");
                (e.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(e.path()).unwrap_or_default())
            })
            .collect()
    }

    fn expected(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn clean(r: SyncReport) -> bool {
        r.skipped.is_empty() && r.failed.is_empty()
    }

    #[test]
    fn writes_keys_and_deletes_only_files_it_wrote() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(tmp.path().join("other.txt"), "not ours").expect("write");
        let mut dir = ConfigDir::new(tmp.path().to_path_buf());
        assert!(clean(dir.sync(&data(&[("a.yaml", "1"), ("b.yaml", "2")]))));
        assert_eq!(files(tmp.path()), expected(&[("a.yaml", "1"), ("b.yaml", "2"), ("other.txt", "not ours")]));

        // b is gone from the Secret, a changed: b's file goes, other.txt stays.
        assert!(clean(dir.sync(&data(&[("a.yaml", "3")]))));
        assert_eq!(files(tmp.path()), expected(&[("a.yaml", "3"), ("other.txt", "not ours")]));

        // A file with a key's name that this process never wrote is not deleted.
        std::fs::write(tmp.path().join("c.yaml"), "someone else's").expect("write");
        assert!(clean(dir.sync(&data(&[]))));
        assert_eq!(files(tmp.path()), expected(&[("c.yaml", "someone else's"), ("other.txt", "not ours")]));
    }

    #[test]
    fn compressed_keys_become_plain_files_and_bad_ones_are_named() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut dir = ConfigDir::new(tmp.path().to_path_buf());
        let packed = zstd::encode_all(&b"global: {}\n"[..], 3).expect("compress");
        let mut d = BTreeMap::from([("p.yaml.zst".to_string(), packed)]);
        assert!(clean(dir.sync(&d)));
        assert_eq!(files(tmp.path()), expected(&[("p.yaml", "global: {}\n")]));

        d.insert("bad.yaml.zst".into(), b"plain text".to_vec());
        let report = dir.sync(&d);
        assert!(report.failed.iter().any(|f| f.contains("bad.yaml.zst") && f.contains("zstd")), "{report:?}");
        assert!(!tmp.path().join("bad.yaml").exists());

        // The compressed key gone: its plain file goes too.
        assert!(clean(dir.sync(&BTreeMap::new())));
        assert!(files(tmp.path()).is_empty());
    }

    #[test]
    fn invalid_keys_are_skipped_and_named() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let sub = tmp.path().join("config");
        let mut dir = ConfigDir::new(sub.clone());
        let report = dir.sync(&data(&[("../escape.yaml", "x"), (".", "x"), ("..", "x"), ("", "x"), ("ok.yaml", "fine")]));
        assert!(report.failed.is_empty(), "{report:?}");
        let problems = report.skipped;
        assert_eq!(problems.len(), 4, "{problems:?}");
        for key in ["\"../escape.yaml\"", "\".\"", "\"..\"", "\"\""] {
            assert!(problems.iter().any(|p| p.starts_with(&format!("key {key} skipped"))), "{key} in {problems:?}");
        }
        // The directory was created; only the valid key was written, nothing escaped.
        assert_eq!(files(&sub), expected(&[("ok.yaml", "fine")]));
        assert_eq!(files(tmp.path()).keys().collect::<Vec<_>>(), ["config"]);
    }

    #[test]
    fn a_failing_write_names_the_key_and_does_not_stop_the_others() {
        let tmp = tempfile::tempdir().expect("tempdir");
        // A directory where the file should go: the rename over it fails.
        std::fs::create_dir(tmp.path().join("blocked.yaml")).expect("mkdir");
        let mut dir = ConfigDir::new(tmp.path().to_path_buf());
        let report = dir.sync(&data(&[("blocked.yaml", "x"), ("z.yaml", "z")]));
        assert!(report.skipped.is_empty(), "{report:?}");
        let problems = report.failed;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("key \"blocked.yaml\": writing "), "{problems:?}");
        assert_eq!(std::fs::read_to_string(tmp.path().join("z.yaml")).expect("z written"), "z");
        // No temporary file is left behind.
        assert!(!tmp.path().join(".blocked.yaml.hearth-tmp").exists());
    }
}
