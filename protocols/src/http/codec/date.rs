//! [`HttpDate`]: the `Date` header's value, formatted from a time the caller passes in (the
//! codec reads no clock).

use std::time::{SystemTime, UNIX_EPOCH};

/// A `Date` value in IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7),
/// formatted from a time the caller passes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HttpDate([u8; 29]);

impl HttpDate {
    /// The date of `time` (times before 1970 give 1970-01-01).
    pub fn from_system_time(time: SystemTime) -> Self {
        let secs = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        Self::from_unix_secs(secs)
    }

    /// The date `secs` seconds after 1970-01-01T00:00:00Z.
    pub fn from_unix_secs(secs: u64) -> Self {
        const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
        const MONTHS: [&[u8; 3]; 12] = [
            b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
            b"Dec",
        ];
        let days = secs / 86_400;
        let (year, month, day) = civil_from_days(days);
        let rem = secs % 86_400;
        let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
        out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
        put_two(&mut out[5..7], day);
        out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
        let year = year.min(9999);
        put_two(&mut out[12..14], year / 100);
        put_two(&mut out[14..16], year % 100);
        put_two(&mut out[17..19], rem / 3600);
        put_two(&mut out[20..22], rem / 60 % 60);
        put_two(&mut out[23..25], rem % 60);
        HttpDate(out)
    }

    /// The 29 bytes of the value.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

fn put_two(out: &mut [u8], n: u64) {
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}
