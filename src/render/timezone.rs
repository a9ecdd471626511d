//! Daylight-saving rules derived from an IANA zone, in the forms phones take them. Phones do
//! not know IANA names: Yealink's automatic mode picks a rule from its own table by offset and
//! zone name, and Polycom's `daylightSavings.enable` alone applies US rules everywhere. So we
//! write the rule itself — "the Nth (or last) weekday of a month at an hour" — as found in the
//! zone's transitions this year, checked against next year's.
//!
//! Key formats: Yealink `local_time.start_time`/`end_time` = `M/W/D/H` with week 1–5 (5 = last)
//! and weekday 1 = Monday … 7 = Sunday, `dst_time_type = 1`, `offset_time` in minutes (as
//! wazo-provd's Yealink plugin writes them, `_format_dst_change`); Polycom
//! `tcpIpApp.sntp.daylightSavings.{start,stop}.{month,date,dayOfWeek,dayOfWeek.lastInMonth,time}`
//! with `fixedDayEnable = 0`, `date` the first date the weekday can fall on (1, 8, 15, 22) and
//! weekday 1 = Sunday (domain.md §3).

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use serde::Serialize;

/// One switch: the Nth (`week` 1–4) or last (`week` 5) `weekday` of `month`, at `hour` local
/// wall-clock time just before the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Switch {
    pub month: u32,
    pub week: u32,
    /// ISO weekday: 1 = Monday … 7 = Sunday.
    pub weekday: u32,
    pub hour: u32,
    /// The same in Polycom's terms, for templates: first possible date, weekday (1 = Sunday),
    /// last in month (0 or 1).
    pub polycom_date: u32,
    pub polycom_weekday: u32,
    pub polycom_last: u8,
}

impl Switch {
    /// Yealink's `M/W/D/H`.
    pub fn yealink(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.month, self.week, self.weekday, self.hour
        )
    }

    fn new(month: u32, week: u32, weekday: u32, hour: u32) -> Switch {
        Switch {
            month,
            week,
            weekday,
            hour,
            // The first date the weekday can fall on: 1, 8, 15, 22 (last: the 22nd's week).
            polycom_date: (week.min(4) - 1) * 7 + 1,
            polycom_weekday: weekday % 7 + 1,
            polycom_last: u8::from(week == 5),
        }
    }
}

/// A zone's yearly daylight-saving rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DstRule {
    /// Into daylight time (local standard time before the switch).
    pub start: Switch,
    /// Back to standard time (local daylight time before the switch).
    pub stop: Switch,
    /// How far clocks move, in minutes.
    pub save_minutes: i32,
    /// Yealink's start and stop strings, for templates.
    pub yealink_start: &'static str,
    pub yealink_stop: &'static str,
}

/// UTC instants in `year` where the zone's offset changes, with the offsets before and after.
fn transitions(zone: chrono_tz::Tz, year: i32) -> Vec<(NaiveDateTime, i32, i32)> {
    let offset_at = |t: NaiveDateTime| zone.offset_from_utc_datetime(&t).fix().local_minus_utc();
    let Some(start) = NaiveDate::from_ymd_opt(year, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut day = start;
    let mut before = offset_at(day);
    // Day by day, then quarter hour by quarter hour inside a day whose offset changed (zones
    // switch on the quarter hour, at most once a day).
    while day.year() == year {
        let next_day = day + Duration::days(1);
        if offset_at(next_day) != before {
            let mut t = day;
            while t < next_day {
                let next = t + Duration::minutes(15);
                let now = offset_at(next);
                if now != before {
                    out.push((next, before, now));
                    before = now;
                    break;
                }
                t = next;
            }
        }
        day = next_day;
    }
    out
}

fn switch_at(local: NaiveDateTime) -> Switch {
    let day = local.day();
    let days_in_month = match local.month() {
        12 => 31,
        m => NaiveDate::from_ymd_opt(local.year(), m + 1, 1)
            .and_then(|d| d.pred_opt())
            .map(|d| d.day())
            .unwrap_or(28),
    };
    let week = if day + 7 > days_in_month {
        5
    } else {
        (day - 1) / 7 + 1
    };
    Switch::new(
        local.month(),
        week,
        local.weekday().number_from_monday(),
        local.hour(),
    )
}

/// The rule of one year, if the zone switches exactly twice in it.
fn rule_of(zone: chrono_tz::Tz, year: i32) -> Option<(Switch, Switch, i32)> {
    let t = transitions(zone, year);
    let [a, b] = t.as_slice() else {
        return None;
    };
    let (start, stop) = if a.2 > a.1 { (a, b) } else { (b, a) };
    let local =
        |(utc, before, _): &(NaiveDateTime, i32, i32)| *utc + Duration::seconds(*before as i64);
    Some((
        switch_at(local(start)),
        switch_at(local(stop)),
        (start.2 - start.1) / 60,
    ))
}

fn leak(s: String) -> &'static str {
    // Rules are few (one per zone in use) and live as long as the process: interning them keeps
    // the context `Copy` and the templates simple.
    static SEEN: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut g = match SEEN.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    if let Some(hit) = g.iter().find(|x| **x == s) {
        return hit;
    }
    let s: &'static str = Box::leak(s.into_boxed_str());
    g.push(s);
    s
}

/// The zone's daylight-saving rule, from this year's switches, when next year's follow the
/// same rule. `None` for a zone without daylight saving, or one whose switches are not a
/// weekday rule (then daylight saving is written off, and the caller logs it).
pub fn dst_rule(zone: chrono_tz::Tz) -> Option<DstRule> {
    let year = Utc::now().year();
    // Every phone file of a site asks: work it out once per zone and year.
    type Cache = std::collections::HashMap<(chrono_tz::Tz, i32), Option<DstRule>>;
    static CACHE: std::sync::Mutex<Option<Cache>> = std::sync::Mutex::new(None);
    if let Ok(g) = CACHE.lock()
        && let Some(hit) = g.as_ref().and_then(|c| c.get(&(zone, year)))
    {
        return *hit;
    }
    let rule = compute(zone, year);
    if let Ok(mut g) = CACHE.lock() {
        g.get_or_insert_with(Default::default)
            .insert((zone, year), rule);
    }
    rule
}

fn compute(zone: chrono_tz::Tz, year: i32) -> Option<DstRule> {
    let this = rule_of(zone, year)?;
    let next = rule_of(zone, year + 1)?;
    if this != next {
        return None;
    }
    let (start, stop, save_minutes) = this;
    Some(DstRule {
        start,
        stop,
        save_minutes,
        yealink_start: leak(start.yealink()),
        yealink_stop: leak(stop.yealink()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where a phone following Yealink's `M/W/D/H` (read back from the string we write) would
    /// switch in `year`, as a UTC instant; `offset` is the local offset in force before it.
    fn yealink_instant(keys: &str, year: i32, offset: i32) -> NaiveDateTime {
        let p: Vec<u32> = keys.split('/').map(|x| x.parse().unwrap()).collect();
        let (month, week, weekday, hour) = (p[0], p[1], p[2], p[3]);
        let first = NaiveDate::from_ymd_opt(year, month, 1).unwrap();
        let mut days: Vec<NaiveDate> = first
            .iter_days()
            .take_while(|d| d.month() == month)
            .filter(|d| d.weekday().number_from_monday() == weekday)
            .collect();
        let day = if week == 5 {
            days.pop().unwrap()
        } else {
            days[(week - 1) as usize]
        };
        day.and_hms_opt(hour, 0, 0).unwrap() - Duration::seconds(offset as i64)
    }

    /// The same for Polycom's month/date/dayOfWeek/lastInMonth/time.
    fn polycom_instant(s: &Switch, year: i32, offset: i32) -> NaiveDateTime {
        let (date, dow, last) = (s.polycom_date, s.polycom_weekday, s.polycom_last == 1);
        let first = NaiveDate::from_ymd_opt(year, s.month, 1).unwrap();
        let matches: Vec<NaiveDate> = first
            .iter_days()
            .take_while(|d| d.month() == s.month)
            .filter(|d| d.weekday().number_from_sunday() == dow)
            .collect();
        let day = if last {
            *matches.last().unwrap()
        } else {
            *matches.iter().find(|d| d.day() >= date).unwrap()
        };
        day.and_hms_opt(s.hour, 0, 0).unwrap() - Duration::seconds(offset as i64)
    }

    #[test]
    fn phones_switch_when_the_zone_does() {
        let year = Utc::now().year();
        for name in [
            "America/Denver",
            "America/Phoenix",
            "America/St_Johns",
            "Europe/London",
            "Europe/Berlin",
            "Australia/Sydney",
            "Pacific/Auckland",
            "Asia/Kolkata",
            "Asia/Tokyo",
        ] {
            let zone: chrono_tz::Tz = name.parse().unwrap();
            let rule = dst_rule(zone);
            for y in [year, year + 1] {
                let real = transitions(zone, y);
                let Some(r) = rule else {
                    assert!(
                        real.is_empty(),
                        "{name}: DST written off but the zone switches"
                    );
                    continue;
                };
                assert_eq!(real.len(), 2, "{name} {y}");
                for (utc, before, after) in real {
                    let (ys, ps) = if after > before {
                        (r.yealink_start, r.start)
                    } else {
                        (r.yealink_stop, r.stop)
                    };
                    assert_eq!(
                        yealink_instant(ys, y, before),
                        utc,
                        "{name} {y} Yealink {ys}"
                    );
                    assert_eq!(
                        polycom_instant(&ps, y, before),
                        utc,
                        "{name} {y} Polycom {ps:?}"
                    );
                    assert_eq!(r.save_minutes, 60, "{name}");
                }
            }
        }
        let d = dst_rule("America/Denver".parse().unwrap()).unwrap();
        assert_eq!((d.yealink_start, d.yealink_stop), ("3/2/7/2", "11/1/7/2"));
        let l = dst_rule("Europe/London".parse().unwrap()).unwrap();
        assert_eq!((l.yealink_start, l.yealink_stop), ("3/5/7/1", "10/5/7/2"));
        assert!(dst_rule("Asia/Tokyo".parse().unwrap()).is_none());
    }
}
