//! Surface forms of stemmed terms: for each term, the few most frequent words that produced it,
//! so topics can be shown as `peace military government` instead of `peac militari govern`.
//!
//! Memory stays bounded whatever the corpus: a term keeps at most [`FORMS_PER_TERM`] candidate
//! forms, updated by the space-saving rule (a new form replaces the least frequent candidate and
//! inherits its count), which always keeps any form more frequent than 1/FORMS_PER_TERM of the
//! term's occurrences and gives the most frequent form exactly in the common case of one
//! dominant form.

/// Candidate forms kept per term.
pub const FORMS_PER_TERM: usize = 3;

/// The candidate surface forms of one term, with their (space-saving) counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopForms {
    forms: Vec<(Box<str>, u64)>,
}

impl TopForms {
    /// Adds `n` occurrences of `form`.
    pub fn add(&mut self, form: &str, n: u64) {
        if let Some(entry) = self.forms.iter_mut().find(|(f, _)| &**f == form) {
            entry.1 += n;
        } else if self.forms.len() < FORMS_PER_TERM {
            self.forms.push((form.into(), n));
        } else if let Some(min) = self.forms.iter_mut().min_by_key(|(_, c)| *c) {
            *min = (form.into(), min.1 + n);
        }
    }

    /// Folds another summary of the same term into this one (the merge of two workers).
    pub fn merge(&mut self, other: TopForms) {
        for (form, n) in other.forms {
            if let Some(entry) = self.forms.iter_mut().find(|(f, _)| *f == form) {
                entry.1 += n;
            } else {
                self.forms.push((form, n));
            }
        }
        // Keep the heaviest candidates; ties by form, so the result does not depend on order.
        self.forms
            .sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        self.forms.truncate(FORMS_PER_TERM);
    }

    /// The most frequent form (ties: the smallest), if any was seen.
    pub fn best(&self) -> Option<&str> {
        self.forms
            .iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
            .map(|(f, _)| &**f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_the_dominant_form_with_many_rare_ones() {
        let mut t = TopForms::default();
        for i in 0..1000 {
            t.add("peace", 1);
            t.add(&format!("rare{i}"), 1);
        }
        assert_eq!(t.best(), Some("peace"));
        let mut other = TopForms::default();
        other.add("peaces", 5);
        t.merge(other);
        assert_eq!(t.best(), Some("peace"));
        assert!(t.forms.len() <= FORMS_PER_TERM);
    }

    proptest! {
        /// A form with more than a third of the occurrences is always the one found.
        #[test]
        fn a_majority_form_is_found(stream in prop::collection::vec(0u8..8, 1..300)) {
            let mut t = TopForms::default();
            let mut counts = [0u64; 8];
            for &f in &stream {
                t.add(&format!("f{f}"), 1);
                counts[f as usize] += 1;
            }
            let total: u64 = counts.iter().sum();
            let (top, &c) = counts.iter().enumerate().max_by_key(|(_, c)| **c).unwrap();
            let unique_top = counts.iter().filter(|&&x| x == c).count() == 1;
            if unique_top && c * 2 > total {
                let expected = format!("f{top}");
                prop_assert_eq!(t.best(), Some(expected.as_str()));
            }
        }
    }
}
