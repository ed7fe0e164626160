//! Timestamp text shared by the writers. Times are rounded to whole
//! milliseconds once, as integers, so a turn's start, end and duration always
//! agree in the written digits (float formatting of each could disagree).

/// Seconds to whole milliseconds; negative or non-finite times clamp to 0.
pub(crate) fn millis(t_s: f64) -> u64 {
    if t_s.is_finite() && t_s > 0.0 {
        (t_s * 1000.0).round() as u64
    } else {
        0
    }
}

/// `12.345`
pub(crate) fn decimal_ms(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// `HH:MM:SS<sep>mmm`; hours grow past two digits rather than wrap.
pub(crate) fn clock(ms: u64, sep: char) -> String {
    let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
    format!("{h:02}:{m:02}:{s:02}{sep}{:03}", ms % 1000)
}

/// Start and end of a turn in milliseconds, end never before start.
pub(crate) fn span_ms(start_s: f64, end_s: f64) -> (u64, u64) {
    let start = millis(start_s);
    (start, millis(end_s).max(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_carries_into_the_next_unit() {
        assert_eq!(millis(3599.9996), 3_600_000);
        assert_eq!(clock(3_600_000, ','), "01:00:00,000");
        assert_eq!(clock(360_000_000 + 61_001, '.'), "100:01:01.001");
        assert_eq!(decimal_ms(millis(0.0005)), "0.001");
        assert_eq!(decimal_ms(millis(-1.0)), "0.000");
        assert_eq!(decimal_ms(millis(f64::NAN)), "0.000");
    }
}
