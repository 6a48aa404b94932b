//! Grouping in memory, with exactly the decisions the database path makes: for
//! `backstop group-errors`, the accuracy tests and anyone grouping a log offline.

use std::collections::HashMap;

use super::signature::Signature;
use super::template::{Learned, Template, place};

/// Learns error groups from messages, in the order it is given them.
///
/// Group ids count from 1 in order of first appearance. When a template widens over others,
/// their groups merge into the oldest, as in the database; [`Grouper::group_of`] follows merges.
///
/// ```
/// use backstop::triage::Grouper;
///
/// let mut grouper = Grouper::default();
/// let a = grouper.learn("card declined for invoice 26");
/// let b = grouper.learn("card declined for invoice 182");
/// let c = grouper.learn(r#"duplicate key value violates unique constraint "orders_pkey""#);
/// assert_eq!(a, b);
/// assert_ne!(a, c);
/// assert_eq!(grouper.template(a).unwrap(), "card declined for invoice <*>");
/// ```
#[derive(Debug, Default)]
pub struct Grouper {
    /// Live templates by token count (the bucket the database keys them by too).
    buckets: HashMap<usize, Vec<Learned>>,
    /// Merged group -> the group that absorbed it.
    merged_into: HashMap<i64, i64>,
    last_id: i64,
}

impl Grouper {
    /// Places one message and returns its group's id as of now.
    pub fn learn(&mut self, message: &str) -> i64 {
        let signature = Signature::of(message);
        let bucket = self.buckets.entry(signature.tokens.len()).or_default();
        let placement = place(bucket, &signature);
        let Some(id) = placement.group else {
            self.last_id += 1;
            bucket.push(Learned { id: self.last_id, template: placement.template, seen: 1 });
            return self.last_id;
        };
        let absorbed_seen: i64 = bucket
            .iter()
            .filter(|learned| placement.absorbed.contains(&learned.id))
            .map(|learned| learned.seen)
            .sum();
        bucket.retain(|learned| !placement.absorbed.contains(&learned.id));
        for absorbed in &placement.absorbed {
            self.merged_into.insert(*absorbed, id);
        }
        let survivor = bucket.iter_mut().find(|learned| learned.id == id).expect("placed in a live group");
        survivor.template = placement.template;
        survivor.seen += absorbed_seen + 1;
        id
    }

    /// The group a message placed earlier belongs to now (following merges).
    pub fn group_of(&self, mut id: i64) -> i64 {
        while let Some(next) = self.merged_into.get(&id) {
            id = *next;
        }
        id
    }

    /// A live group's template, as people read it.
    pub fn template(&self, id: i64) -> Option<String> {
        self.buckets
            .values()
            .flatten()
            .find(|learned| learned.id == id)
            .map(|learned| learned.template.render())
    }

    /// The live groups' templates.
    pub fn templates(&self) -> impl Iterator<Item = (i64, &Template)> {
        self.buckets.values().flatten().map(|learned| (learned.id, &learned.template))
    }

    /// How many groups are live (not merged into another).
    pub fn len(&self) -> usize {
        self.buckets.values().map(Vec::len).sum()
    }

    /// Whether no message has been learned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::Grouper;

    #[test]
    fn a_template_that_widens_over_another_group_absorbs_it() {
        let mut g = Grouper::default();
        let first = g.learn("partner answered 503");
        assert_eq!(g.learn("partner answered 503"), first); // a status code seen twice: constant
        let second = g.learn("partner answered 502");
        assert_ne!(first, second);
        // A third code at the same place joins the second, seen once, and widens it over the
        // first: one group, under the first's key.
        assert_eq!(g.learn("partner answered 504"), first);
        assert_eq!(g.group_of(second), first);
        assert_eq!(g.len(), 1);
        assert_eq!(g.template(first).unwrap(), "partner answered <*>");
        assert_eq!(g.template(second), None);
    }

    #[test]
    fn numbers_other_than_status_codes_vary_from_the_start() {
        let mut g = Grouper::default();
        let first = g.learn("invoice 26 declined");
        assert_eq!(g.learn("invoice 26 declined"), first);
        assert_eq!(g.learn("invoice 182 declined"), first);
        assert_eq!(g.template(first).unwrap(), "invoice <*> declined");
    }
}
