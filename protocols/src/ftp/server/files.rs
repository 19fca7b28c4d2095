//! The served directory as FTP names it: a working directory, paths resolved against it with
//! `..` kept inside the root, and what `LIST`, `NLST` and `MDTM` say about files.

use std::fs::{self, Metadata};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::http::static_files::{inside, Hidden, Refusal};

/// Why a path names nothing that may be used: `550` either way, with this text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Denied {
    /// Nothing there.
    NotFound,
    /// Outside the root (through a symlink), unreadable, or not a plain name.
    Forbidden,
}

impl Denied {
    pub(super) fn text(self) -> &'static str {
        match self {
            Denied::NotFound => "No such file or directory.",
            Denied::Forbidden => "Permission denied.",
        }
    }
}

impl From<Refusal> for Denied {
    fn from(refusal: Refusal) -> Denied {
        match refusal {
            Refusal::NotFound => Denied::NotFound,
            Refusal::Forbidden | Refusal::BadRequest => Denied::Forbidden,
        }
    }
}

/// The names of a virtual path under the root, `/` being the root itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct VirtualPath(Vec<String>);

impl VirtualPath {
    /// `arg` taken from `self` (or from the root if it starts with `/`): `.` and empty names
    /// dropped, `..` going up but never above the root. `None` for a NUL.
    pub(super) fn join(&self, arg: &str) -> Option<VirtualPath> {
        if arg.contains('\0') {
            return None;
        }
        let mut names = if arg.starts_with('/') {
            Vec::new()
        } else {
            self.0.clone()
        };
        for name in arg.split('/') {
            match name {
                "" | "." => {}
                ".." => {
                    names.pop();
                }
                name => names.push(name.to_string()),
            }
        }
        Some(VirtualPath(names))
    }

    /// The parent, or the root itself.
    pub(super) fn parent(&self) -> VirtualPath {
        let mut names = self.0.clone();
        names.pop();
        VirtualPath(names)
    }

    /// The last name, if not the root.
    pub(super) fn file_name(&self) -> Option<&str> {
        self.0.last().map(String::as_str)
    }

    /// As the client sees it: `/a/b`, `/` for the root.
    pub(super) fn display(&self) -> String {
        if self.0.is_empty() {
            return "/".to_string();
        }
        self.0.iter().map(|name| format!("/{name}")).collect()
    }

    /// The existing file or directory this path names under `root` (canonical): its real
    /// path and metadata, refused if a symlink leads outside the root.
    pub(super) fn resolve(&self, root: &Path) -> Result<(PathBuf, Metadata), Denied> {
        let mut candidate = root.to_path_buf();
        candidate.extend(&self.0);
        if self.0.is_empty() {
            let metadata = fs::metadata(root).map_err(|_| Denied::NotFound)?;
            return Ok((root.to_path_buf(), metadata));
        }
        Ok(inside(root, &candidate, Hidden::Serve)?)
    }
}

/// A directory's entries, sorted by name, with their metadata (entries that vanish or whose
/// metadata cannot be read are left out; symlinks are described as themselves).
pub(super) fn entries(dir: &Path) -> std::io::Result<Vec<(String, Metadata)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        found.push((entry.file_name().to_string_lossy().into_owned(), metadata));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// One `ls -l` line: mode, links, owner and group ids, size, date, name.
pub(super) fn list_line(name: &str, metadata: &Metadata) -> String {
    let kind = if metadata.is_dir() {
        'd'
    } else if metadata.file_type().is_symlink() {
        'l'
    } else {
        '-'
    };
    let mode = metadata.permissions().mode();
    let mut perms = String::with_capacity(9);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        perms.push(if bits & 4 != 0 { 'r' } else { '-' });
        perms.push(if bits & 2 != 0 { 'w' } else { '-' });
        perms.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    let (year, month, day, _, _, _) = civil(modified_secs(metadata));
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{kind}{perms} {:>3} {:<8} {:<8} {:>12} {} {day:>2}  {year} {name}",
        metadata.nlink(),
        metadata.uid(),
        metadata.gid(),
        metadata.len(),
        MONTHS[(month - 1) as usize],
    )
}

/// `MDTM`'s time (RFC 3659 §2.3): `YYYYMMDDHHMMSS`, UTC.
pub(super) fn mdtm(metadata: &Metadata) -> String {
    let (y, mo, d, h, mi, s) = civil(modified_secs(metadata));
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

fn modified_secs(metadata: &Metadata) -> u64 {
    metadata
        .modified()
        .unwrap_or(SystemTime::UNIX_EPOCH)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Seconds since the epoch as UTC year, month, day, hour, minute, second (Howard Hinnant's
/// days-to-civil algorithm).
fn civil(secs: u64) -> (u64, u64, u64, u64, u64, u64) {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_dot_never_climbs_above_the_root() {
        let cwd = VirtualPath::default().join("a/b").unwrap();
        assert_eq!(cwd.display(), "/a/b");
        assert_eq!(cwd.join("../../../../etc").unwrap().display(), "/etc");
        assert_eq!(cwd.join("/x/./y//z/..").unwrap().display(), "/x/y");
        assert_eq!(cwd.parent().parent().parent().display(), "/");
        assert!(cwd.join("a\0b").is_none());
    }

    #[test]
    fn dates_are_utc_civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400 + 3661), (2000, 2, 29, 1, 1, 1));
        assert_eq!(civil(1_767_225_599), (2025, 12, 31, 23, 59, 59));
    }

    #[test]
    fn a_symlink_out_of_the_root_is_refused() {
        let base = std::env::temp_dir().join(format!("torsion-ftp-files-{}", std::process::id()));
        let root = base.join("root");
        fs::create_dir_all(&root).unwrap();
        fs::write(base.join("secret"), b"x").unwrap();
        let _ = fs::remove_file(root.join("escape"));
        std::os::unix::fs::symlink(base.join("secret"), root.join("escape")).unwrap();
        fs::write(root.join("plain"), b"y").unwrap();
        let root = fs::canonicalize(&root).unwrap();
        let top = VirtualPath::default();
        assert_eq!(
            top.join("escape").unwrap().resolve(&root).unwrap_err(),
            Denied::Forbidden
        );
        assert_eq!(
            top.join("missing").unwrap().resolve(&root).unwrap_err(),
            Denied::NotFound
        );
        assert!(top.join("../plain").unwrap().resolve(&root).is_ok());
        fs::remove_dir_all(&base).unwrap();
    }
}
