//! The date and time builtins. Strings are read as python-dateutil reads them (see
//! [`super::dateparse`]) into a naive datetime with microseconds, years 1 to 9999, like
//! Python's `datetime.datetime`; results are printed as Python's `str()` prints them.

use chrono::{Datelike, Local, NaiveDate};

use super::dateparse;
use super::python::{self, type_name};
use crate::value::Value;

const US_PER_SECOND: i128 = 1_000_000;
const US_PER_DAY: i128 = 86_400 * US_PER_SECOND;
/// Python's `timedelta.max.days`.
const MAX_DELTA_DAYS: i128 = 999_999_999;

/// A naive datetime, as Python's `datetime.datetime` without a time zone. Fields are in
/// chronological order, so the derived ordering is chronological.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct DateTime {
    pub(super) date: NaiveDate,
    pub(super) hour: u32,
    pub(super) minute: u32,
    pub(super) second: u32,
    pub(super) micro: u32,
}

impl DateTime {
    /// Microseconds since 0001-01-01 00:00:00.
    fn micros(&self) -> i128 {
        let days = i128::from(self.date.num_days_from_ce() - 1);
        let secs = i128::from(self.hour * 3600 + self.minute * 60 + self.second);
        days * US_PER_DAY + secs * US_PER_SECOND + i128::from(self.micro)
    }

    /// The datetime this many microseconds after 0001-01-01, if within years 1 to 9999.
    fn from_micros(us: i128) -> Option<DateTime> {
        let days = i32::try_from(us.div_euclid(US_PER_DAY)).ok()?;
        let rest = us.rem_euclid(US_PER_DAY);
        let date = NaiveDate::from_num_days_from_ce_opt(days.checked_add(1)?)?;
        if !(1..=9999).contains(&date.year()) {
            return None;
        }
        let secs = u32::try_from(rest / US_PER_SECOND).ok()?;
        let micro = u32::try_from(rest % US_PER_SECOND).ok()?;
        Some(DateTime { date, hour: secs / 3600, minute: secs / 60 % 60, second: secs % 60, micro })
    }

    /// Python's `datetime + timedelta` (`OverflowError` outside years 1 to 9999).
    fn plus_micros(&self, delta: i128) -> Result<DateTime, String> {
        DateTime::from_micros(self.micros() + delta).ok_or_else(|| "date value out of range".into())
    }

    /// Python's `str(dt.date())`.
    fn date_string(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.date.year(), self.date.month(), self.date.day())
    }

    /// Python's `str(dt.time())`: microseconds only when nonzero.
    fn time_string(&self) -> String {
        let hms = format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second);
        if self.micro == 0 { hms } else { format!("{hms}.{:06}", self.micro) }
    }
}

/// Python's `str(dt)`.
impl std::fmt::Display for DateTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.date_string(), self.time_string())
    }
}

/// Congress's `to_datetime`: `dateutil.parser.parse(x, ignoretz=True)`, with today's date
/// filling in what the string leaves out.
fn to_datetime(x: &Value) -> Result<DateTime, String> {
    match x {
        Value::Str(s) => dateparse::parse(s, Local::now().date_naive()),
        _ => Err(format!("Parser must be a string or character stream, not {}", type_name(x))),
    }
}

/// Congress's `to_timedelta`, in microseconds: a number of seconds, or a string
/// `"[[[[weeks:]days:]hours:]minutes:]seconds"` of ints.
fn to_timedelta(y: &Value) -> Result<i128, String> {
    let us = match y {
        Value::Str(s) => {
            const UNITS: [i128; 5] = [1, 60, 3600, 86_400, 604_800];
            let fields: Vec<&str> = s.split(':').collect();
            if fields.len() > UNITS.len() {
                return Err("list index out of range".into());
            }
            let mut total: i128 = 0;
            for (field, unit) in fields.iter().rev().zip(UNITS) {
                let n = python::parse_int(field)
                    .map_err(|_| format!("invalid literal for int() with base 10: {}", python::repr_str(field)))?;
                total += i128::from(n) * unit * US_PER_SECOND;
            }
            total
        }
        Value::Int(n) => i128::from(*n) * US_PER_SECOND,
        Value::Float(f) => float_seconds_to_micros(*f)?,
    };
    let days = us.div_euclid(US_PER_DAY);
    if days.abs() > MAX_DELTA_DAYS {
        return Err(format!("days={days}; must have magnitude <= {MAX_DELTA_DAYS}"));
    }
    Ok(us)
}

/// CPython's `timedelta(seconds=f)`: the whole seconds exactly, the fraction through
/// float arithmetic, rounded half to even on the total.
fn float_seconds_to_micros(f: f64) -> Result<i128, String> {
    if f.is_nan() {
        return Err("cannot convert float NaN to integer".into());
    }
    if f.is_infinite() {
        return Err("cannot convert float infinity to integer".into());
    }
    // Far beyond timedelta's range; also keeps the casts below exact.
    if f.abs() >= 1e20 {
        return Err(format!("days={}; must have magnitude <= {MAX_DELTA_DAYS}", f / 86_400.0));
    }
    let whole = f.trunc();
    let frac = f - whole;
    let mut total = (whole as i128) * US_PER_SECOND;
    if frac == 0.0 {
        return Ok(total);
    }
    let scaled = 1e6 * frac;
    let whole_us = scaled.trunc();
    let leftover = scaled - whole_us;
    total += whole_us as i128;
    if leftover != 0.0 {
        let mut rounded = leftover.round();
        if (rounded - leftover).abs() == 0.5 {
            let odd = (total & 1) as f64;
            rounded = 2.0 * ((leftover + odd) * 0.5).round() - odd;
        }
        total += rounded as i128;
    }
    Ok(total)
}

pub(super) fn now() -> Value {
    Value::from(Local::now().format("%Y-%m-%d %H:%M:%S").to_string())
}

pub(super) fn unpack_date(x: &Value) -> Result<Vec<Value>, String> {
    let dt = to_datetime(x)?;
    Ok(ints([dt.date.year(), dt.date.month() as i32, dt.date.day() as i32]))
}

pub(super) fn unpack_time(x: &Value) -> Result<Vec<Value>, String> {
    let dt = to_datetime(x)?;
    Ok(ints([dt.hour, dt.minute, dt.second].map(|n| n as i32)))
}

pub(super) fn unpack_datetime(x: &Value) -> Result<Vec<Value>, String> {
    let dt = to_datetime(x)?;
    let date = [dt.date.year(), dt.date.month() as i32, dt.date.day() as i32];
    let time = [dt.hour, dt.minute, dt.second].map(|n| n as i32);
    Ok(ints(date).into_iter().chain(ints(time)).collect())
}

fn ints<const N: usize>(fields: [i32; N]) -> Vec<Value> {
    fields.into_iter().map(|n| Value::Int(i64::from(n))).collect()
}

/// `"{}:{}:{}".format(hour, minute, second)`: any values, no padding.
pub(super) fn pack_time(args: &[Value]) -> Result<Value, String> {
    Ok(Value::from(join(args, &[":", ":"])))
}

/// `"{}-{}-{}".format(year, month, day)`.
pub(super) fn pack_date(args: &[Value]) -> Result<Value, String> {
    Ok(Value::from(join(args, &["-", "-"])))
}

/// `"{}-{}-{} {}:{}:{}".format(year, month, day, hour, minute, second)`.
pub(super) fn pack_datetime(args: &[Value]) -> Result<Value, String> {
    Ok(Value::from(join(args, &["-", "-", " ", ":", ":"])))
}

/// The `str()` of each value, with the separators between them.
fn join(values: &[Value], separators: &[&str]) -> String {
    let mut out = String::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push_str(separators.get(i - 1).copied().unwrap_or(""));
        }
        out.push_str(&python::to_str(v));
    }
    out
}

pub(super) fn extract_date(x: &Value) -> Result<Value, String> {
    Ok(Value::from(to_datetime(x)?.date_string()))
}

pub(super) fn extract_time(x: &Value) -> Result<Value, String> {
    Ok(Value::from(to_datetime(x)?.time_string()))
}

/// `int((dt - datetime(1900, 1, 1)).total_seconds())`: Python divides the microseconds
/// into a float (correctly rounded), then truncates toward zero.
pub(super) fn datetime_to_seconds(x: &Value) -> Result<Value, String> {
    let epoch = DateTime {
        date: NaiveDate::from_ymd_opt(1900, 1, 1).ok_or("bad epoch")?,
        hour: 0,
        minute: 0,
        second: 0,
        micro: 0,
    };
    let us = to_datetime(x)?.micros() - epoch.micros();
    let seconds = if us.abs() < 1 << 53 {
        us as f64 / 1e6
    } else {
        (us / US_PER_SECOND) as f64 + (us % US_PER_SECOND) as f64 / 1e6
    };
    Ok(Value::Int(seconds.trunc() as i64))
}

pub(super) fn datetime_plus(x: &Value, y: &Value) -> Result<Value, String> {
    let dt = to_datetime(x)?;
    let delta = to_timedelta(y)?;
    Ok(Value::from(dt.plus_micros(delta)?.to_string()))
}

pub(super) fn datetime_minus(x: &Value, y: &Value) -> Result<Value, String> {
    let dt = to_datetime(x)?;
    let delta = to_timedelta(y)?;
    Ok(Value::from(dt.plus_micros(-delta)?.to_string()))
}

pub(super) fn datetime_lt(x: &Value, y: &Value) -> Result<bool, String> {
    Ok(to_datetime(x)? < to_datetime(y)?)
}

pub(super) fn datetime_lteq(x: &Value, y: &Value) -> Result<bool, String> {
    Ok(to_datetime(x)? <= to_datetime(y)?)
}

pub(super) fn datetime_gt(x: &Value, y: &Value) -> Result<bool, String> {
    Ok(to_datetime(x)? > to_datetime(y)?)
}

pub(super) fn datetime_gteq(x: &Value, y: &Value) -> Result<bool, String> {
    Ok(to_datetime(x)? >= to_datetime(y)?)
}

pub(super) fn datetime_equal(x: &Value, y: &Value) -> Result<bool, String> {
    Ok(to_datetime(x)? == to_datetime(y)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::builtins::test_values::s;

    fn today() -> String {
        Local::now().date_naive().format("%Y-%m-%d").to_string()
    }

    #[test]
    fn now_is_a_local_timestamp() {
        let Value::Str(t) = now() else { panic!("now() is a string") };
        assert_eq!(t.len(), 19);
        assert!(dateparse::parse(&t, Local::now().date_naive()).is_ok());
    }

    #[test]
    fn unpacking() {
        let ints = |v: &[i64]| v.iter().map(|&n| Value::Int(n)).collect::<Vec<_>>();
        assert_eq!(unpack_date(&s("2020-03-04 05:06:07")), Ok(ints(&[2020, 3, 4])));
        assert_eq!(unpack_time(&s("2020-03-04 05:06:07")), Ok(ints(&[5, 6, 7])));
        assert_eq!(unpack_datetime(&s("2020-03-04T05:06:07Z")), Ok(ints(&[2020, 3, 4, 5, 6, 7])));
        assert_eq!(unpack_date(&s("2020/03/04")), Ok(ints(&[2020, 3, 4])));
        assert_eq!(unpack_time(&s("10:11:12.75+02:00")), Ok(ints(&[10, 11, 12])));
        assert!(unpack_date(&s("not a date")).is_err());
        assert!(unpack_date(&s("2020-02-30")).is_err());
        assert!(unpack_time(&Value::Int(5)).is_err());
    }

    #[test]
    fn packing_does_not_pad() {
        let v = [Value::Int(2020), Value::Int(3), Value::Int(4)];
        assert_eq!(pack_date(&v), Ok(s("2020-3-4")));
        assert_eq!(pack_time(&v), Ok(s("2020:3:4")));
        let mixed = [s("a"), Value::Float(1.5), Value::Int(3)];
        assert_eq!(pack_date(&mixed), Ok(s("a-1.5-3")));
        let six = [2020, 1, 2, 3, 4, 5].map(Value::Int);
        assert_eq!(pack_datetime(&six), Ok(s("2020-1-2 3:4:5")));
    }

    #[test]
    fn extracting() {
        assert_eq!(extract_date(&s("2020-03-04 05:06:07")), Ok(s("2020-03-04")));
        assert_eq!(extract_time(&s("2020-03-04 05:06:07")), Ok(s("05:06:07")));
        assert_eq!(extract_time(&s("2020-03-04 05:06:07.25")), Ok(s("05:06:07.250000")));
        assert_eq!(extract_date(&s("10:00")), Ok(Value::from(today())));
        assert!(extract_date(&Value::Float(1.0)).is_err());
    }

    #[test]
    fn seconds_since_1900() {
        assert_eq!(datetime_to_seconds(&s("1900-01-01")), Ok(Value::Int(0)));
        assert_eq!(datetime_to_seconds(&s("1900-01-02 00:00:01")), Ok(Value::Int(86_401)));
        assert_eq!(datetime_to_seconds(&s("1899-12-31 23:59:59.5")), Ok(Value::Int(0)));
        assert_eq!(datetime_to_seconds(&s("2000-01-01")), Ok(Value::Int(3_155_673_600)));
        assert_eq!(datetime_to_seconds(&s("0001-01-01")), Ok(Value::Int(-59_926_608_000)));
        assert_eq!(datetime_to_seconds(&s("9999-12-31 23:59:59.999999")), Ok(Value::Int(255_611_289_600)));
        assert!(datetime_to_seconds(&s("")).is_err());
    }

    #[test]
    fn adding_and_subtracting() {
        let base = s("2020-01-01 00:00:00");
        assert_eq!(datetime_plus(&base, &Value::Int(90)), Ok(s("2020-01-01 00:01:30")));
        assert_eq!(datetime_plus(&base, &s("1:0:0:0:1")), Ok(s("2020-01-08 00:00:01")));
        assert_eq!(datetime_plus(&base, &s("2:30")), Ok(s("2020-01-01 00:02:30")));
        assert_eq!(datetime_plus(&base, &s(" -1 ")), Ok(s("2019-12-31 23:59:59")));
        assert_eq!(datetime_plus(&base, &Value::Float(1.5)), Ok(s("2020-01-01 00:00:01.500000")));
        assert_eq!(datetime_plus(&base, &Value::Float(0.0000005)), Ok(s("2020-01-01 00:00:00")));
        assert_eq!(datetime_plus(&base, &Value::Float(0.0000015)), Ok(s("2020-01-01 00:00:00.000002")));
        assert_eq!(datetime_minus(&base, &Value::Int(1)), Ok(s("2019-12-31 23:59:59")));
        assert_eq!(datetime_minus(&base, &s("1:0:0")), Ok(s("2019-12-31 23:00:00")));
        assert!(datetime_plus(&base, &s("1:2:3:4:5:6")).is_err());
        assert!(datetime_plus(&base, &s("x")).is_err());
        assert!(datetime_plus(&base, &s("")).is_err());
        assert!(datetime_plus(&base, &Value::Float(f64::NAN)).is_err());
        assert!(datetime_plus(&base, &Value::Float(f64::INFINITY)).is_err());
        assert!(datetime_plus(&base, &Value::Int(i64::MAX)).is_err());
        assert!(datetime_plus(&s("9999-12-31 23:59:59"), &Value::Int(1)).is_err());
        assert!(datetime_minus(&s("0001-01-01"), &Value::Int(1)).is_err());
        assert!(datetime_plus(&Value::Int(1), &Value::Int(1)).is_err());
    }

    #[test]
    fn comparing() {
        let (a, b) = (s("2020-01-01"), s("2020-01-01 00:00:01"));
        assert_eq!(datetime_lt(&a, &b), Ok(true));
        assert_eq!(datetime_lteq(&a, &a), Ok(true));
        assert_eq!(datetime_gt(&a, &b), Ok(false));
        assert_eq!(datetime_gteq(&b, &a), Ok(true));
        assert_eq!(datetime_equal(&a, &s("2020/01/01 00:00")), Ok(true));
        assert_eq!(datetime_equal(&a, &s("2020-01-01T00:00:00+05:00")), Ok(true));
        assert!(datetime_lt(&a, &s("garbage")).is_err());
        assert!(datetime_equal(&a, &Value::Int(2020)).is_err());
    }
}
