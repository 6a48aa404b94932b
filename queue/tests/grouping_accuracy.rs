//! Grouping accuracy on Backstop's labelled corpus of job failures (`tests/corpus`): the share
//! of messages whose group holds exactly the messages of their true group (the "grouping
//! accuracy" of Zhu et al., "Tools and Benchmarks for Automated Log Parsing", ICSE-SEIP 2019).
//! Messages are learned in the corpus' order, as they would arrive, and merges are followed.

use std::collections::{BTreeSet, HashMap};

use backstop::triage::Grouper;

/// The floor this test holds the grouper to: what it scores today (0.971), so a change that
/// makes grouping worse fails. The target was 0.95; see the README for where it stands.
const MIN_ACCURACY: f64 = 0.97;

#[derive(serde::Deserialize)]
struct Labelled {
    group: String,
    message: String,
}

fn corpus() -> Vec<Labelled> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/job-failures.jsonl");
    std::fs::read_to_string(path)
        .expect("corpus file")
        .lines()
        .map(|line| serde_json::from_str(line).expect("corpus line"))
        .collect()
}

/// The share of items whose predicted group has exactly the members of their true group.
fn grouping_accuracy(truth: &[&str], predicted: &[i64]) -> f64 {
    let mut true_members: HashMap<&str, BTreeSet<usize>> = HashMap::new();
    let mut predicted_members: HashMap<i64, BTreeSet<usize>> = HashMap::new();
    for (i, (t, p)) in truth.iter().zip(predicted).enumerate() {
        true_members.entry(t).or_default().insert(i);
        predicted_members.entry(*p).or_default().insert(i);
    }
    let correct =
        (0..truth.len()).filter(|&i| true_members[truth[i]] == predicted_members[&predicted[i]]).count();
    correct as f64 / truth.len() as f64
}

#[test]
fn grouping_accuracy_on_the_job_failure_corpus() {
    let corpus = corpus();
    let mut grouper = Grouper::default();
    let placed: Vec<i64> = corpus.iter().map(|item| grouper.learn(&item.message)).collect();
    let predicted: Vec<i64> = placed.iter().map(|id| grouper.group_of(*id)).collect();
    let truth: Vec<&str> = corpus.iter().map(|item| item.group.as_str()).collect();
    let accuracy = grouping_accuracy(&truth, &predicted);
    // `GROUPING_DEBUG=label,label cargo test ... -- --nocapture` shows those groups' tokens and
    // where each message went: where to look when changing the grouper.
    if let Ok(labels) = std::env::var("GROUPING_DEBUG") {
        for (i, item) in corpus.iter().enumerate() {
            if labels.split(',').any(|l| l == item.group) {
                eprintln!(
                    "{} g{} {:?}",
                    item.group,
                    predicted[i],
                    backstop::triage::Signature::of(&item.message).tokens
                );
            }
        }
    }
    let true_groups = truth.iter().collect::<BTreeSet<_>>().len();

    // Which true groups went wrong, for whoever changes the grouper next.
    let mut by_truth: HashMap<&str, BTreeSet<i64>> = HashMap::new();
    let mut by_group: HashMap<i64, BTreeSet<&str>> = HashMap::new();
    for (t, p) in truth.iter().zip(&predicted) {
        by_truth.entry(t).or_default().insert(*p);
        by_group.entry(*p).or_default().insert(t);
    }
    let mut wrong: Vec<String> = by_truth
        .iter()
        .filter(|(_, groups)| groups.len() > 1 || groups.iter().any(|g| by_group[g].len() > 1))
        .map(|(t, groups)| {
            let shared: BTreeSet<&str> = groups.iter().flat_map(|g| by_group[g].iter().copied()).collect();
            format!("  {t}: split into {}, shares with {:?}", groups.len(), shared)
        })
        .collect();
    wrong.sort();
    eprintln!(
        "grouping accuracy {:.3} on {} messages: {} groups for {} true groups\n{}",
        accuracy,
        corpus.len(),
        grouper.len(),
        true_groups,
        wrong.join("\n")
    );
    assert!(accuracy >= MIN_ACCURACY, "grouping accuracy {accuracy:.3} is below {MIN_ACCURACY}");
}

#[test]
fn accuracy_is_one_for_a_perfect_grouping_and_less_for_a_split_or_a_merge() {
    assert_eq!(grouping_accuracy(&["a", "a", "b"], &[1, 1, 2]), 1.0);
    assert_eq!(grouping_accuracy(&["a", "a", "b"], &[1, 2, 3]), 1.0 / 3.0);
    assert_eq!(grouping_accuracy(&["a", "a", "b"], &[1, 1, 1]), 0.0);
}
