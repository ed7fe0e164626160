//! Interval arithmetic on sorted lists of `[start, end)` spans, the small part
//! of `pyannote.core.Timeline` the scorer needs.

/// pyannote.core treats anything shorter than a microsecond as empty.
pub(crate) const PRECISION_S: f64 = 1e-6;

pub(crate) type Span = (f64, f64);

pub(crate) fn is_empty(span: Span) -> bool {
    span.1 - span.0 <= PRECISION_S
}

/// Merges overlapping or touching spans: the support of a timeline.
pub(crate) fn support(mut spans: Vec<Span>) -> Vec<Span> {
    spans.retain(|&s| !is_empty(s));
    spans.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// Total length of a support (disjoint spans).
pub(crate) fn duration(support: &[Span]) -> f64 {
    support.iter().map(|s| s.1 - s.0).sum()
}

/// `region` minus the union of `holes`; `region` is one span.
pub(crate) fn subtract(region: Span, holes: Vec<Span>) -> Vec<Span> {
    let mut out = Vec::new();
    let mut cursor = region.0;
    for (start, end) in support(holes) {
        if end <= cursor {
            continue;
        }
        if start >= region.1 {
            break;
        }
        if !is_empty((cursor, start)) {
            out.push((cursor, start.min(region.1)));
        }
        cursor = cursor.max(end);
    }
    if !is_empty((cursor, region.1)) {
        out.push((cursor, region.1));
    }
    out
}

/// Pieces of `span` inside the sorted, disjoint `region`, dropping slivers.
pub(crate) fn crop(span: Span, region: &[Span]) -> impl Iterator<Item = Span> + '_ {
    let first = region.partition_point(|r| r.1 <= span.0);
    region[first..]
        .iter()
        .take_while(move |r| r.0 < span.1)
        .map(move |r| (span.0.max(r.0), span.1.min(r.1)))
        .filter(|&s| !is_empty(s))
}

/// Length of the intersection of two supports.
pub(crate) fn intersection_duration(a: &[Span], b: &[Span]) -> f64 {
    let (mut i, mut j, mut total) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        let (start, end) = (a[i].0.max(b[j].0), a[i].1.min(b[j].1));
        if end > start {
            total += end - start;
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_merges_touching_and_nested_spans() {
        let s = support(vec![
            (5.0, 6.0),
            (0.0, 2.0),
            (2.0, 3.0),
            (0.5, 1.0),
            (7.0, 7.0),
        ]);
        assert_eq!(s, vec![(0.0, 3.0), (5.0, 6.0)]);
        assert_eq!(duration(&s), 4.0);
    }

    #[test]
    fn subtract_leaves_the_gaps_inside_the_region() {
        let got = subtract(
            (0.0, 10.0),
            vec![(-1.0, 1.0), (4.0, 5.0), (4.5, 6.0), (9.5, 12.0)],
        );
        assert_eq!(got, vec![(1.0, 4.0), (6.0, 9.5)]);
        assert_eq!(subtract((0.0, 1.0), vec![]), vec![(0.0, 1.0)]);
        assert!(subtract((0.0, 1.0), vec![(-1.0, 2.0)]).is_empty());
    }

    #[test]
    fn crop_and_intersect() {
        let region = [(0.0, 1.0), (2.0, 3.0), (4.0, 5.0)];
        let pieces: Vec<Span> = crop((0.5, 4.5), &region).collect();
        assert_eq!(pieces, vec![(0.5, 1.0), (2.0, 3.0), (4.0, 4.5)]);
        assert_eq!(crop((1.0, 2.0), &region).count(), 0);
        assert_eq!(
            intersection_duration(&region, &[(0.5, 2.5), (4.75, 9.0)]),
            1.25
        );
    }
}
