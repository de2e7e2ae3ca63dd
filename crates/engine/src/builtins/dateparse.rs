//! A port of python-dateutil's `parser.parse(timestr, ignoretz=True)`, the parser behind
//! Congress's date builtins (default `parserinfo`, not fuzzy, as in dateutil 2.7 to 4.0).
//!
//! The string is split into tokens: runs of letters, runs of digits (with a decimal point
//! or comma), and single other characters. Tokens are read left to right: numbers by their
//! length and neighbours (`20200102`, `10:30:00.5`, `2020-01-02`, `12h`, `5pm`), month and
//! weekday names, am/pm, time zones (recognised, then ignored) and "jump" words that are
//! skipped (`at`, `on`, `of`, `T`, punctuation). Year, month and day are then told apart
//! as dateutil does (month first when ambiguous). Fields the string leaves out come from
//! `today` at midnight, and a two-digit year is taken within 50 years of this year.
//!
//! Not ported: non-ASCII digits, which Python's `isdigit()` accepts.

use std::collections::VecDeque;

use chrono::{Datelike, Days, NaiveDate};

use super::dates::DateTime;
use super::python::is_space;

/// Parses a date string as dateutil does; an error where dateutil raises.
pub(super) fn parse(timestr: &str, today: NaiveDate) -> Result<DateTime, String> {
    let parser = Parser {
        tokens: tokenize(timestr),
        res: Res::default(),
        ymd: Ymd::default(),
        this_year: i64::from(today.year()),
    };
    let res = parser.run().map_err(|Invalid| format!("Unknown string format: {timestr}"))?;
    if res.is_empty() {
        return Err(format!("String does not contain a date: {timestr}"));
    }
    build(&res, today).map_err(|e| format!("{e}: {timestr}"))
}

/// dateutil gave up on the string (its `IndexError` or `ValueError` while parsing).
#[derive(Debug)]
struct Invalid;

// ---------------------------------------------------------------------------------------
// Tokens (dateutil's `_timelex`)

#[derive(Clone, Copy, PartialEq, Eq)]
enum LexState {
    Word,
    Number,
    WordDot,
    NumberDot,
}

fn is_word(c: char) -> bool {
    c.is_alphabetic()
}

fn is_num(c: char) -> bool {
    c.is_ascii_digit()
}

fn tokenize(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().filter(|&c| c != '\0').collect();
    let mut pos = 0;
    let mut pending = VecDeque::new();
    let mut tokens = Vec::new();
    loop {
        if let Some(t) = pending.pop_front() {
            tokens.push(t);
        } else if let Some(t) = next_token(&chars, &mut pos, &mut pending) {
            tokens.push(t);
        } else {
            return tokens;
        }
    }
}

/// One token from `chars[*pos..]`; pieces split off a dotted token go to `pending`.
fn next_token(chars: &[char], pos: &mut usize, pending: &mut VecDeque<String>) -> Option<String> {
    let mut token = String::new();
    let mut state = None;
    let mut seen_letters = false;
    while let Some(&c) = chars.get(*pos) {
        let Some(current) = state else {
            *pos += 1;
            if is_word(c) {
                state = Some(LexState::Word);
            } else if is_num(c) {
                state = Some(LexState::Number);
            } else {
                token.push(if is_space(c) { ' ' } else { c });
                break;
            }
            token.push(c);
            continue;
        };
        let (take, next) = match current {
            LexState::Word => {
                seen_letters = true;
                if is_word(c) { (true, current) } else { (c == '.', LexState::WordDot) }
            }
            LexState::Number => {
                if is_num(c) {
                    (true, current)
                } else {
                    let dot = c == '.' || (c == ',' && token.chars().count() >= 2);
                    (dot, LexState::NumberDot)
                }
            }
            LexState::WordDot => {
                seen_letters = true;
                if c == '.' || is_word(c) {
                    (true, current)
                } else {
                    (is_num(c) && token.ends_with('.'), LexState::NumberDot)
                }
            }
            LexState::NumberDot => {
                if c == '.' || is_num(c) {
                    (true, current)
                } else {
                    (is_word(c) && token.ends_with('.'), LexState::WordDot)
                }
            }
        };
        if !take {
            break;
        }
        state = Some(next);
        token.push(c);
        *pos += 1;
    }
    if token.is_empty() {
        return None;
    }
    let dotted = matches!(state, Some(LexState::WordDot | LexState::NumberDot));
    if dotted && (seen_letters || token.matches('.').count() > 1 || token.ends_with(['.', ','])) {
        let mut parts = split_keeping_separators(&token).into_iter();
        token = parts.next().unwrap_or_default();
        pending.extend(parts.filter(|p| !p.is_empty()));
    }
    if state == Some(LexState::NumberDot) && !token.contains('.') {
        token = token.replace(',', ".");
    }
    Some(token)
}

/// Python's `re.split("([.,])", s)`.
fn split_keeping_separators(s: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    for c in s.chars() {
        if c == '.' || c == ',' {
            parts.push(c.to_string());
            parts.push(String::new());
        } else if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

// ---------------------------------------------------------------------------------------
// Words (dateutil's default `parserinfo`)

fn lower(t: &str) -> String {
    t.to_lowercase()
}

fn is_jump(t: &str) -> bool {
    const JUMP: [&str; 18] =
        [" ", ".", ",", ";", "-", "/", "'", "at", "on", "and", "ad", "m", "t", "of", "st", "nd", "rd", "th"];
    JUMP.contains(&lower(t).as_str())
}

/// Monday is 0, as Python's `weekday()`.
fn weekday(t: &str) -> Option<u32> {
    Some(match lower(t).as_str() {
        "mon" | "monday" => 0,
        "tue" | "tuesday" => 1,
        "wed" | "wednesday" => 2,
        "thu" | "thursday" => 3,
        "fri" | "friday" => 4,
        "sat" | "saturday" => 5,
        "sun" | "sunday" => 6,
        _ => return None,
    })
}

fn month(t: &str) -> Option<i64> {
    Some(match lower(t).as_str() {
        "jan" | "january" => 1,
        "feb" | "february" => 2,
        "mar" | "march" => 3,
        "apr" | "april" => 4,
        "may" => 5,
        "jun" | "june" => 6,
        "jul" | "july" => 7,
        "aug" | "august" => 8,
        "sep" | "sept" | "september" => 9,
        "oct" | "october" => 10,
        "nov" | "november" => 11,
        "dec" | "december" => 12,
        _ => return None,
    })
}

/// Hour, minute or second label: 0, 1 or 2.
fn hms(t: &str) -> Option<u32> {
    Some(match lower(t).as_str() {
        "h" | "hour" | "hours" => 0,
        "m" | "minute" | "minutes" => 1,
        "s" | "second" | "seconds" => 2,
        _ => return None,
    })
}

/// am is 0, pm is 1.
fn ampm(t: &str) -> Option<u32> {
    match lower(t).as_str() {
        "am" | "a" => Some(0),
        "pm" | "p" => Some(1),
        _ => None,
    }
}

fn is_pertain(t: &str) -> bool {
    lower(t) == "of"
}

fn is_utc_zone(t: &str) -> bool {
    matches!(lower(t).as_str(), "utc" | "gmt" | "z")
}

/// dateutil's `parserinfo.tzoffset` (it checks the lowercase table case-sensitively).
fn tz_offset(t: &str) -> Option<i64> {
    matches!(t, "utc" | "gmt" | "z").then_some(0)
}

fn adjust_ampm(hour: i64, ampm: u32) -> i64 {
    match (hour, ampm) {
        (h, 1) if h < 12 => h + 12,
        (12, 0) => 0,
        (h, _) => h,
    }
}

/// Python's `int(s)` on a token: ASCII digits only here (tokens carry no signs, spaces or
/// underscores). Saturates: every field it feeds is range-checked later.
fn int(s: &str) -> Result<i64, Invalid> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Invalid);
    }
    Ok(s.bytes().fold(0i64, |acc, b| acc.saturating_mul(10).saturating_add(i64::from(b - b'0'))))
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Python's `s[start:end]` on characters.
fn slice(s: &str, start: usize, end: Option<usize>) -> String {
    let take = end.map_or(usize::MAX, |e| e.saturating_sub(start));
    s.chars().skip(start).take(take).collect()
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

// ---------------------------------------------------------------------------------------
// Numbers (dateutil reads numeric tokens as `Decimal`)

/// A nonnegative decimal token: its integer part (saturating) and its fraction digits.
#[derive(Clone, Debug)]
struct Dec {
    whole: i64,
    frac: String,
}

impl Dec {
    fn parse(s: &str) -> Option<Dec> {
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
            return None;
        }
        let whole = if whole.is_empty() { 0 } else { int(whole).ok()? };
        Some(Dec { whole, frac: frac.to_string() })
    }

    fn has_frac(&self) -> bool {
        self.frac.bytes().any(|b| b != b'0')
    }

    fn gt(&self, n: i64) -> bool {
        self.whole > n || (self.whole == n && self.has_frac())
    }

    fn lt(&self, n: i64) -> bool {
        self.whole < n
    }

    fn le(&self, n: i64) -> bool {
        !self.gt(n)
    }

    /// `int(60 * (value % 1))`, exactly.
    fn sixty_frac(&self) -> i64 {
        self.frac.bytes().rev().fold(0, |carry, d| (i64::from(d - b'0') * 60 + carry) / 10)
    }
}

/// Words that Python's `float()` accepts, making dateutil try (and fail) to read a number.
fn is_float_word(t: &str) -> bool {
    matches!(lower(t).as_str(), "inf" | "infinity" | "nan")
}

// ---------------------------------------------------------------------------------------
// Year, month, day (dateutil's `_ymd`)

#[derive(Clone, Copy, PartialEq, Eq)]
enum Label {
    Year,
    Month,
}

/// Year, month and day, each if known.
type YearMonthDay = (Option<i64>, Option<i64>, Option<i64>);

#[derive(Default)]
struct Ymd {
    values: Vec<i64>,
    century_specified: bool,
    year_idx: Option<usize>,
    month_idx: Option<usize>,
}

impl Ymd {
    fn len(&self) -> usize {
        self.values.len()
    }

    /// A string: more than two digits makes it the year.
    fn append_str(&mut self, s: &str, label: Option<Label>) -> Result<(), Invalid> {
        let mut label = label;
        if is_digits(s) && char_len(s) > 2 {
            label = self.year_label(label)?;
        }
        self.push(int(s)?, label)
    }

    /// A number: over 100 makes it the year.
    fn append_num(&mut self, value: &Dec, label: Option<Label>) -> Result<(), Invalid> {
        let mut label = label;
        if value.gt(100) {
            label = self.year_label(label)?;
        }
        self.push(value.whole, label)
    }

    fn year_label(&mut self, label: Option<Label>) -> Result<Option<Label>, Invalid> {
        self.century_specified = true;
        match label {
            None | Some(Label::Year) => Ok(Some(Label::Year)),
            Some(Label::Month) => Err(Invalid),
        }
    }

    fn push(&mut self, value: i64, label: Option<Label>) -> Result<(), Invalid> {
        self.values.push(value);
        let idx = self.values.len() - 1;
        let slot = match label {
            None => return Ok(()),
            Some(Label::Year) => &mut self.year_idx,
            Some(Label::Month) => &mut self.month_idx,
        };
        if slot.is_some() {
            return Err(Invalid);
        }
        *slot = Some(idx);
        Ok(())
    }

    fn could_be_day(&self, value: &Dec) -> Result<bool, Invalid> {
        let last = match (self.month_idx, self.year_idx) {
            (None, _) => 31,
            (Some(m), None) => days_in_month(2000, self.values[m]).ok_or(Invalid)?,
            (Some(m), Some(y)) => days_in_month(self.values[y], self.values[m]).ok_or(Invalid)?,
        };
        Ok(!value.lt(1) && value.le(last))
    }

    /// (year, month, day), as dateutil's `resolve_ymd` with `dayfirst` and `yearfirst` off.
    fn resolve(&self) -> Result<YearMonthDay, Invalid> {
        let v = &self.values;
        let known = usize::from(self.year_idx.is_some()) + usize::from(self.month_idx.is_some());
        if (v.len() == known && known > 0) || (v.len() == 3 && known == 2) {
            return Ok(self.resolve_from_labels());
        }
        Ok(match (v.len(), self.month_idx) {
            (0, _) => (None, None, None),
            (1, _) => {
                let other = v[0];
                if other > 31 { (Some(other), None, None) } else { (None, None, Some(other)) }
            }
            (2, Some(m)) => {
                let other = v[1 - m];
                if other > 31 { (Some(other), Some(v[m]), None) } else { (None, Some(v[m]), Some(other)) }
            }
            (2, None) => {
                if v[0] > 31 {
                    (Some(v[0]), Some(v[1]), None)
                } else if v[1] > 31 {
                    (Some(v[1]), Some(v[0]), None)
                } else {
                    (None, Some(v[0]), Some(v[1]))
                }
            }
            (3, Some(0)) => {
                if v[1] > 31 {
                    (Some(v[1]), Some(v[0]), Some(v[2]))
                } else {
                    (Some(v[2]), Some(v[0]), Some(v[1]))
                }
            }
            (3, Some(1)) => {
                if v[0] > 31 {
                    (Some(v[0]), Some(v[1]), Some(v[2]))
                } else {
                    (Some(v[2]), Some(v[1]), Some(v[0]))
                }
            }
            (3, Some(_)) => {
                if v[1] > 31 {
                    (Some(v[1]), Some(v[2]), Some(v[0]))
                } else {
                    (Some(v[0]), Some(v[2]), Some(v[1]))
                }
            }
            (3, None) => {
                if v[0] > 31 || self.year_idx == Some(0) {
                    (Some(v[0]), Some(v[1]), Some(v[2]))
                } else if v[0] > 12 {
                    (Some(v[2]), Some(v[1]), Some(v[0]))
                } else {
                    (Some(v[2]), Some(v[0]), Some(v[1]))
                }
            }
            _ => return Err(Invalid),
        })
    }

    /// When the labels (with at most one value left over) settle every position.
    fn resolve_from_labels(&self) -> YearMonthDay {
        let (mut y, mut m, mut d) = (self.year_idx, self.month_idx, None);
        if self.values.len() == 3 {
            let missing = (0..3).find(|i| Some(*i) != y && Some(*i) != m);
            match (y, m) {
                (None, _) => y = missing,
                (_, None) => m = missing,
                _ => d = missing,
            }
        }
        let at = |i: Option<usize>| i.and_then(|i| self.values.get(i).copied());
        (at(y), at(m), at(d))
    }
}

/// `calendar.monthrange(year, month)[1]`; `None` for a month outside 1 to 12.
fn days_in_month(year: i64, month: i64) -> Option<i64> {
    let leap = year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0);
    Some(match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// The parse (dateutil's `parser._parse`)

/// What the string said; `None` where it said nothing.
#[derive(Default, Debug)]
struct Res {
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    weekday: Option<u32>,
    hour: Option<i64>,
    minute: Option<i64>,
    second: Option<i64>,
    microsecond: Option<i64>,
    tzname: Option<String>,
    tzoffset: Option<i64>,
    ampm: Option<u32>,
}

impl Res {
    fn is_empty(&self) -> bool {
        self.year.is_none()
            && self.month.is_none()
            && self.day.is_none()
            && self.weekday.is_none()
            && self.hour.is_none()
            && self.minute.is_none()
            && self.second.is_none()
            && self.microsecond.is_none()
            && self.tzname.is_none()
            && self.tzoffset.is_none()
            && self.ampm.is_none()
    }

    fn could_be_tzname(&self, tzoffset: Option<i64>, token: &str) -> bool {
        self.hour.is_some()
            && self.tzname.is_none()
            && tzoffset.is_none()
            && char_len(token) <= 5
            && (token.chars().all(|c| c.is_ascii_uppercase()) || matches!(token, "UTC" | "GMT" | "Z" | "z"))
    }
}

struct Parser {
    tokens: Vec<String>,
    res: Res,
    ymd: Ymd,
    this_year: i64,
}

impl Parser {
    fn tok(&self, i: usize) -> Result<&str, Invalid> {
        self.tokens.get(i).map(String::as_str).ok_or(Invalid)
    }

    fn is(&self, i: usize, s: &str) -> bool {
        self.tokens.get(i).is_some_and(|t| t == s)
    }

    fn run(mut self) -> Result<Res, Invalid> {
        let n = self.tokens.len();
        let mut i = 0;
        while i < n {
            let token = self.tokens[i].clone();
            if let Some(value) = Dec::parse(&token) {
                i = self.numeric(i, &value)?;
            } else if is_float_word(&token) {
                return Err(Invalid);
            } else if let Some(wd) = weekday(&token) {
                self.res.weekday = Some(wd);
            } else if let Some(m) = month(&token) {
                i = self.month_name(i, m)?;
            } else if let Some(value) = ampm(&token) {
                match self.res.hour {
                    Some(h) if (0..=12).contains(&h) => {
                        self.res.hour = Some(adjust_ampm(h, value));
                        self.res.ampm = Some(value);
                    }
                    _ => return Err(Invalid),
                }
            } else if self.res.could_be_tzname(self.res.tzoffset, &token) {
                self.res.tzoffset = tz_offset(&token);
                self.res.tzname = Some(token.clone());
                if self.is(i + 1, "+") || self.is(i + 1, "-") {
                    // "GMT+3" means "my time +3 is GMT": dateutil flips the sign. Time zones
                    // are ignored here, so only the bookkeeping matters.
                    self.res.tzoffset = None;
                    if is_utc_zone(&token) {
                        self.res.tzname = None;
                    }
                }
            } else if self.res.hour.is_some() && (token == "+" || token == "-") {
                i = self.numeric_zone(i, if token == "+" { 1 } else { -1 })?;
            } else if !is_jump(&token) {
                return Err(Invalid);
            }
            i += 1;
        }
        let (year, month, day) = self.ymd.resolve()?;
        self.res.year = year.map(|y| self.convert_year(y, self.ymd.century_specified));
        self.res.month = month;
        self.res.day = day;
        Ok(self.res)
    }

    /// dateutil's `convertyear`: a two-digit year within 50 years of this one.
    fn convert_year(&self, year: i64, century_specified: bool) -> i64 {
        if year >= 100 || century_specified {
            return year;
        }
        let year = year + self.this_year / 100 * 100;
        if year >= self.this_year + 50 {
            year - 100
        } else if year < self.this_year - 50 {
            year + 100
        } else {
            year
        }
    }

    /// A month name, maybe followed by `-day[-year]`, `/day[/year]` or ` of year`.
    fn month_name(&mut self, mut i: usize, m: i64) -> Result<usize, Invalid> {
        self.ymd.push(m, Some(Label::Month))?;
        if i + 1 >= self.tokens.len() {
            return Ok(i);
        }
        if self.is(i + 1, "-") || self.is(i + 1, "/") {
            let sep = self.tokens[i + 1].clone();
            let day = self.tok(i + 2)?.to_string();
            self.ymd.append_str(&day, None)?;
            if self.is(i + 3, &sep) {
                let year = self.tok(i + 4)?.to_string();
                self.ymd.append_str(&year, None)?;
                i += 2;
            }
            i += 2;
        } else if i + 4 < self.tokens.len()
            && self.is(i + 1, " ")
            && self.is(i + 3, " ")
            && is_pertain(&self.tokens[i + 2])
        {
            if is_digits(&self.tokens[i + 4]) {
                let year = self.convert_year(int(&self.tokens[i + 4])?, false);
                self.ymd.append_str(&year.to_string(), Some(Label::Year))?;
            }
            i += 4;
        }
        Ok(i)
    }

    /// A numeric time zone after the time: `+0300`, `-03:00`, `+3`, maybe `(NAME)`.
    fn numeric_zone(&mut self, mut i: usize, sign: i64) -> Result<usize, Invalid> {
        let next = self.tok(i + 1)?.to_string();
        let len = char_len(&next);
        let (hours, minutes) = if len == 4 {
            (int(&slice(&next, 0, Some(2)))?, int(&slice(&next, 2, None))?)
        } else if self.is(i + 2, ":") {
            let minutes = int(self.tok(i + 3)?)?;
            i += 2;
            (int(&next)?, minutes)
        } else if len <= 2 {
            (int(&slice(&next, 0, Some(2)))?, 0)
        } else {
            return Err(Invalid);
        };
        let offset = hours.saturating_mul(3600).saturating_add(minutes.saturating_mul(60));
        self.res.tzoffset = Some(sign.saturating_mul(offset));
        if i + 5 < self.tokens.len()
            && is_jump(&self.tokens[i + 2])
            && self.is(i + 3, "(")
            && self.is(i + 5, ")")
            && char_len(&self.tokens[i + 4]) >= 3
            && self.res.could_be_tzname(None, &self.tokens[i + 4])
        {
            self.res.tzname = Some(self.tokens[i + 4].clone());
            i += 4;
        }
        Ok(i + 1)
    }

    /// dateutil's `_parse_numeric_token`; returns the index of the last token consumed.
    fn numeric(&mut self, mut idx: usize, value: &Dec) -> Result<usize, Invalid> {
        let n = self.tokens.len();
        let s = self.tokens[idx].clone();
        let len = char_len(&s);
        let next_is_label = |p: &Parser| p.tokens.get(idx + 1).is_some_and(|t| t == ":" || hms(t).is_some());
        if self.ymd.len() == 3 && (len == 2 || len == 4) && self.res.hour.is_none() && !next_is_label(self) {
            // 19990101T23[59]
            self.res.hour = Some(int(&slice(&s, 0, Some(2)))?);
            if len == 4 {
                self.res.minute = Some(int(&slice(&s, 2, None))?);
            }
        } else if len == 6 || (len > 6 && s.find('.') == Some(6)) {
            // YYMMDD or HHMMSS[.ss]
            if self.ymd.len() == 0 && !s.contains('.') {
                self.ymd.append_str(&slice(&s, 0, Some(2)), None)?;
                self.ymd.append_str(&slice(&s, 2, Some(4)), None)?;
                self.ymd.append_str(&slice(&s, 4, None), None)?;
            } else {
                self.res.hour = Some(int(&slice(&s, 0, Some(2)))?);
                self.res.minute = Some(int(&slice(&s, 2, Some(4)))?);
                self.set_seconds(&slice(&s, 4, None))?;
            }
        } else if matches!(len, 8 | 12 | 14) {
            // YYYYMMDD[hhmm[ss]]
            self.ymd.append_str(&slice(&s, 0, Some(4)), Some(Label::Year))?;
            self.ymd.append_str(&slice(&s, 4, Some(6)), None)?;
            self.ymd.append_str(&slice(&s, 6, Some(8)), None)?;
            if len > 8 {
                self.res.hour = Some(int(&slice(&s, 8, Some(10)))?);
                self.res.minute = Some(int(&slice(&s, 10, Some(12)))?);
                if len > 12 {
                    self.res.second = Some(int(&slice(&s, 12, None))?);
                }
            }
        } else if let Some(hms_idx) = self.find_hms_idx(idx) {
            // 12h, 30m, 5.5s, 12h04
            // A label after the number is its own; one before it belongs to the previous
            // number, so this one is the next unit down.
            let label = self.tokens.get(hms_idx).and_then(|t| hms(t));
            let label = if hms_idx > idx {
                idx = hms_idx;
                label
            } else {
                label.map(|l| l + 1)
            };
            match label {
                Some(0) => {
                    self.res.hour = Some(value.whole);
                    if value.has_frac() {
                        self.res.minute = Some(value.sixty_frac());
                    }
                }
                Some(1) => self.set_min_sec(value),
                Some(2) => self.set_seconds(&s)?,
                _ => {}
            }
        } else if idx + 2 < n && self.is(idx + 1, ":") {
            // HH:MM[:SS[.ss]]
            self.res.hour = Some(value.whole);
            let minutes = Dec::parse(&self.tokens[idx + 2]).ok_or(Invalid)?;
            self.set_min_sec(&minutes);
            if idx + 4 < n && self.is(idx + 3, ":") {
                let seconds = self.tokens[idx + 4].clone();
                self.set_seconds(&seconds)?;
                idx += 2;
            }
            idx += 2;
        } else if idx + 1 < n && matches!(self.tokens[idx + 1].as_str(), "-" | "/" | ".") {
            // 01-01[-01], 01-Jan[-01]
            let sep = self.tokens[idx + 1].clone();
            self.ymd.append_str(&s, None)?;
            if idx + 2 < n && !is_jump(&self.tokens[idx + 2]) {
                let second = self.tokens[idx + 2].clone();
                if is_digits(&second) {
                    self.ymd.append_str(&second, None)?;
                } else {
                    self.ymd.push(month(&second).ok_or(Invalid)?, Some(Label::Month))?;
                }
                if self.is(idx + 3, &sep) {
                    let third = self.tok(idx + 4)?.to_string();
                    match month(&third) {
                        Some(m) => self.ymd.push(m, Some(Label::Month))?,
                        None => self.ymd.append_str(&third, None)?,
                    }
                    idx += 2;
                }
                idx += 1;
            }
            idx += 1;
        } else if idx + 1 >= n || is_jump(&self.tokens[idx + 1]) {
            if let Some(a) = self.tokens.get(idx + 2).and_then(|t| ampm(t)) {
                // 12 am
                self.res.hour = Some(adjust_ampm(value.whole, a));
                idx += 1;
            } else {
                self.ymd.append_num(value, None)?;
            }
            idx += 1;
        } else if let Some(a) = ampm(&self.tokens[idx + 1]).filter(|_| value.lt(24)) {
            // 12am
            self.res.hour = Some(adjust_ampm(value.whole, a));
            idx += 1;
        } else if self.ymd.could_be_day(value)? {
            self.ymd.append_num(value, None)?;
        } else {
            return Err(Invalid);
        }
        Ok(idx)
    }

    /// Where the h/m/s label for the number at `idx` is, if it has one.
    fn find_hms_idx(&self, idx: usize) -> Option<usize> {
        let label_at = |i: usize| self.tokens.get(i).is_some_and(|t| hms(t).is_some());
        if label_at(idx + 1) {
            Some(idx + 1)
        } else if self.is(idx + 1, " ") && label_at(idx + 2) {
            Some(idx + 2)
        } else if idx > 0 && label_at(idx - 1) {
            Some(idx - 1)
        } else if idx > 1 && idx + 1 == self.tokens.len() && self.is(idx - 1, " ") && label_at(idx - 2) {
            Some(idx - 2)
        } else {
            None
        }
    }

    /// dateutil's `_parse_min_sec`: minutes, and seconds from a fraction (or none).
    fn set_min_sec(&mut self, value: &Dec) {
        self.res.minute = Some(value.whole);
        self.res.second = value.has_frac().then(|| value.sixty_frac());
    }

    /// dateutil's `_parsems`: `SS[.ffffff]`, the fraction truncated to microseconds.
    fn set_seconds(&mut self, s: &str) -> Result<(), Invalid> {
        let (second, micro) = match s.split_once('.') {
            None => (int(s)?, 0),
            Some((_, f)) if f.contains('.') => return Err(Invalid),
            Some((i, f)) => {
                let micro: String = f.chars().chain(std::iter::repeat('0')).take(6).collect();
                (int(i)?, int(&micro)?)
            }
        };
        self.res.second = Some(second);
        self.res.microsecond = Some(micro);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The result (dateutil's `_build_naive`)

fn build(res: &Res, today: NaiveDate) -> Result<DateTime, String> {
    let year = res.year.unwrap_or_else(|| i64::from(today.year()));
    let month = res.month.unwrap_or_else(|| i64::from(today.month()));
    let day = match res.day {
        Some(d) => d,
        None => {
            let last = days_in_month(year, month).ok_or("bad month number; must be 1-12")?;
            i64::from(today.day()).min(last)
        }
    };
    let field = |v: Option<i64>, max: i64, what: &str| -> Result<u32, String> {
        let v = v.unwrap_or(0);
        u32::try_from(v).ok().filter(|_| v <= max).ok_or_else(|| format!("{what} must be in 0..{max}"))
    };
    if !(1..=9999).contains(&year) {
        return Err(format!("year {year} is out of range"));
    }
    let month = u32::try_from(month).ok().filter(|m| (1..=12).contains(m)).ok_or("month must be in 1..12")?;
    let mut date = u32::try_from(day)
        .ok()
        .and_then(|d| NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, d))
        .ok_or("day is out of range for month")?;
    let dt = DateTime {
        date,
        hour: field(res.hour, 23, "hour")?,
        minute: field(res.minute, 59, "minute")?,
        second: field(res.second, 59, "second")?,
        micro: field(res.microsecond, 999_999, "microsecond")?,
    };
    if let Some(wd) = res.weekday.filter(|_| res.day.unwrap_or(0) == 0) {
        // relativedelta(weekday=wd): the next such weekday, today included.
        let ahead = (wd + 7 - date.weekday().num_days_from_monday()) % 7;
        date = date
            .checked_add_days(Days::new(u64::from(ahead)))
            .filter(|d| d.year() <= 9999)
            .ok_or("date value out of range")?;
        return Ok(DateTime { date, ..dt });
    }
    Ok(dt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 6, 15).unwrap_or_default()
    }

    /// The parse as Python's `str(datetime)`, or "ERR".
    fn p(s: &str) -> String {
        parse(s, today()).map_or_else(|_| "ERR".to_string(), |d| d.to_string())
    }

    #[test]
    fn tokens_split_like_timelex() {
        let t = |s: &str| tokenize(s);
        assert_eq!(t("2020-01-02T10:11:12.5Z"), ["2020", "-", "01", "-", "02", "T", "10", ":", "11", ":", "12.5", "Z"]);
        assert_eq!(t("Sep.20.2009"), ["Sep", ".", "20", ".", "2009"]);
        assert_eq!(t("1.2.3"), ["1", ".", "2", ".", "3"]);
        assert_eq!(t("12,5"), ["12.5"]);
        assert_eq!(t("1,5"), ["1", ",", "5"]);
        assert_eq!(t("10,"), ["10", ","]);
        assert_eq!(t("20.S"), ["20.S"]);
        assert_eq!(t("a\tb\0c"), ["a", " ", "bc"]);
        assert!(t("").is_empty());
    }

    /// Expected values recorded from python-dateutil 4.0.0 with default=2024-06-15.
    #[test]
    fn parses_like_dateutil() {
        let cases = [
            ("2020-01-02", "2020-01-02 00:00:00"),
            ("2020-01-02 03:04:05", "2020-01-02 03:04:05"),
            ("2020-01-02T03:04:05", "2020-01-02 03:04:05"),
            ("2020-01-02T03:04:05.123456789Z", "2020-01-02 03:04:05.123456"),
            ("2020-01-02 03:04:05+05:30", "2020-01-02 03:04:05"),
            ("2020-01-02 03:04:05 -0800", "2020-01-02 03:04:05"),
            ("2020-01-02 03:04:05 UTC", "2020-01-02 03:04:05"),
            ("2020/01/02", "2020-01-02 00:00:00"),
            ("2020.01.02", "2020-01-02 00:00:00"),
            ("01/02/2020", "2020-01-02 00:00:00"),
            ("13/02/2020", "2020-02-13 00:00:00"),
            ("01/02/03", "2003-01-02 00:00:00"),
            ("99-01-02", "1999-01-02 00:00:00"),
            ("20200102", "2020-01-02 00:00:00"),
            ("20200102T0304", "2020-01-02 03:04:00"),
            ("200102", "2002-01-20 00:00:00"),
            ("10:11:12", "2024-06-15 10:11:12"),
            ("10:11", "2024-06-15 10:11:00"),
            ("10:30:15.5", "2024-06-15 10:30:15.500000"),
            ("10h30m", "2024-06-15 10:30:00"),
            ("1.5h", "2024-06-15 01:30:00"),
            ("5pm", "2024-06-15 17:00:00"),
            ("12 am", "2024-06-15 00:00:00"),
            ("10:30 PM", "2024-06-15 22:30:00"),
            ("Jan 5 2021", "2021-01-05 00:00:00"),
            ("5 January 2021", "2021-01-05 00:00:00"),
            ("Jan-05-2021", "2021-01-05 00:00:00"),
            ("2021-Jan-05", "2021-01-05 00:00:00"),
            ("Thu Sep 25 10:36:28 2003", "2003-09-25 10:36:28"),
            ("Sep 2003", "2003-09-15 00:00:00"),
            ("Feb 2023", "2023-02-15 00:00:00"),
            ("June of 2020", "2020-06-15 00:00:00"),
            ("2020", "2020-06-15 00:00:00"),
            ("Monday", "2024-06-17 00:00:00"),
            ("Saturday", "2024-06-15 00:00:00"),
            ("3rd of May 2001", "2001-05-03 00:00:00"),
            ("2003-09-25 at 10:49", "2003-09-25 10:49:00"),
            ("  2020-01-02  ", "2020-01-02 00:00:00"),
            ("30", "2024-06-30 00:00:00"),
            ("13pm", "2024-06-15 13:00:00"),
            ("2020-01-02-03", "2020-01-02 03:00:00"),
            ("2024-02", "2024-02-15 00:00:00"),
        ];
        for (input, want) in cases {
            assert_eq!(p(input), want, "{input:?}");
        }
    }

    #[test]
    fn rejects_what_dateutil_rejects() {
        for bad in [
            "",
            " ",
            "T",
            "-",
            "garbage",
            "2020-13-01",
            "2020-02-30",
            "25:00",
            "10:61",
            "nan",
            "inf",
            "1e5",
            "31",
            "pm",
            "2020-01-02 10:00 +12345",
            "0000-01-01",
            "10000-01-01",
            "1 2 3 4",
            "Jan Feb",
        ] {
            assert_eq!(p(bad), "ERR", "{bad:?}");
        }
    }
}
