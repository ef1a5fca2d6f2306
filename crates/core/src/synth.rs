//! Realistic generated view events, for `viewlog demo` and benchmarks.
//!
//! A small organisation's archive: a few dozen administrators and compliance officers viewing
//! messages between hundreds of staff and outside correspondents, from the places Mimecast
//! records views (mostly Message Tracking), some of it under discovery cases.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use viewlog_store::{UnixTime, ViewEvent};

const FIRST: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia",
    "peggy", "rupert", "sybil", "trent", "victor", "walter", "yasmin", "zoe", "amir", "bea", "chen", "dmitri", "elif",
    "fatima", "goran", "hana", "ines", "jonas", "kenji", "lena", "marta", "nils", "oskar", "priya", "quinn", "rosa",
    "sven", "tariq", "ulla", "vera", "wei", "xavier", "yusuf", "zofia", "åsa", "jürgen", "zoë",
];
const LAST: &[&str] = &[
    "smith",
    "jones",
    "garcia",
    "müller",
    "rossi",
    "dubois",
    "nakamura",
    "kowalski",
    "andersson",
    "okafor",
    "silva",
    "novak",
    "haddad",
    "kim",
    "patel",
    "brown",
    "nguyen",
    "cohen",
    "ivanova",
    "larsen",
];
const OUTSIDE: &[&str] = &[
    "globex.com",
    "initech.com",
    "umbrella.co.uk",
    "hooli.io",
    "stark-industries.com",
    "wayne-enterprises.com",
    "cyberdyne.net",
    "tyrell.example",
    "soylent.org",
    "gmail.com",
    "outlook.com",
    "lawfirm-partners.com",
    "auditors-llp.com",
    "bank-of-somewhere.com",
];
const SUBJECTS: &[&str] = &[
    "Quarterly results",
    "Re: Board meeting minutes",
    "Fwd: Invoice #{n}",
    "Contract renewal – {d}",
    "Re: Re: Project Falcon status",
    "Confidential: merger discussion",
    "Password reset request",
    "Your order {n} has shipped",
    "Payroll adjustments for {m}",
    "Re: Customer complaint {n}",
    "Legal hold notice",
    "Expense report {m}",
    "Team offsite planning",
    "Fwd: Security incident report {n}",
    "Résumé – senior engineer",
    "Q{q} forecast (draft)",
    "Re: NDA for {d}",
    "Due diligence documents",
    "Holiday schedule",
    "Urgent: wire transfer approval",
];
const SOURCES: &[(&str, u32)] =
    &[("Message Tracking", 70), ("Archive Search", 15), ("Discovery Case", 10), ("Personal Portal", 5)];
const MONTHS: &[&str] = &["January", "February", "March", "April", "May", "June", "July", "August", "September"];

/// Generates view events of one organisation, deterministically from a seed.
#[derive(Debug)]
pub struct Generator {
    rng: StdRng,
    domain: String,
    staff: Vec<String>,
    viewers: Vec<String>,
    start: UnixTime,
    end: UnixTime,
    serial: u64,
}

impl Generator {
    /// Events of the organisation at `domain`, viewed between `start` and `end`.
    pub fn new(seed: u64, domain: &str, start: UnixTime, end: UnixTime) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let staff: Vec<String> = (0..400)
            .map(|i| {
                let f = FIRST[rng.gen_range(0..FIRST.len())];
                let l = LAST[rng.gen_range(0..LAST.len())];
                if i % 7 == 0 {
                    format!("{f}.{l}{i}@{domain}")
                } else {
                    format!("{f}.{l}@{domain}")
                }
            })
            .collect();
        let viewers: Vec<String> = (0..30)
            .map(|i| match i {
                0 => format!("admin@{domain}"),
                1 => format!("compliance@{domain}"),
                2 => format!("legal.review@{domain}"),
                _ => staff[rng.gen_range(0..staff.len())].clone(),
            })
            .collect();
        Generator { rng, domain: domain.to_owned(), staff, viewers, start, end: end.max(start), serial: 0 }
    }

    fn outside_address(&mut self) -> String {
        let f = FIRST[self.rng.gen_range(0..FIRST.len())];
        let d = OUTSIDE[self.rng.gen_range(0..OUTSIDE.len())];
        format!("{f}@{d}")
    }

    fn subject(&mut self) -> String {
        let template = SUBJECTS[self.rng.gen_range(0..SUBJECTS.len())];
        let n = self.rng.gen_range(1000..99999).to_string();
        let m = MONTHS[self.rng.gen_range(0..MONTHS.len())];
        let q = self.rng.gen_range(1..=4).to_string();
        let d = OUTSIDE[self.rng.gen_range(0..OUTSIDE.len())].split('.').next().unwrap_or("globex").to_owned();
        template.replace("{n}", &n).replace("{m}", m).replace("{q}", &q).replace("{d}", &d)
    }

    /// The next event.
    pub fn event(&mut self) -> ViewEvent {
        self.serial += 1;
        let viewed = self.rng.gen_range(self.start..=self.end);
        let message_date = viewed - self.rng.gen_range(60..(400 * 86_400));
        let inbound = self.rng.gen_bool(0.55);
        let staff = self.staff.choose(&mut self.rng).cloned().unwrap_or_else(|| format!("staff@{}", self.domain));
        let (from, to) = if inbound { (self.outside_address(), staff) } else { (staff, self.outside_address()) };
        let roll = self.rng.gen_range(0..100);
        let mut acc = 0;
        let mut source = SOURCES[0].0;
        for (s, w) in SOURCES {
            acc += w;
            if roll < acc {
                source = s;
                break;
            }
        }
        let discovery_case = source == "Discovery Case" || self.rng.gen_bool(0.05);
        let viewer = self.viewers.choose(&mut self.rng).cloned().unwrap_or_else(|| format!("admin@{}", self.domain));
        let subject = self.subject();
        let action = ["view", "view", "view", "view", "download", "export", "print"][self.rng.gen_range(0..7)];
        ViewEvent {
            event_id: format!("demo-{:016x}-{}", self.rng.gen::<u64>(), self.serial),
            from,
            to,
            viewer,
            source: source.to_owned(),
            content_viewed: self.rng.gen_bool(0.8),
            discovery_case,
            message_date,
            viewed,
            subject,
            viewer_ip: Some(format!(
                "10.{}.{}.{}",
                self.rng.gen_range(0..255),
                self.rng.gen_range(0..255),
                self.rng.gen_range(1..255)
            )),
            message_id: Some(format!("<{:x}@{}>", self.rng.gen::<u64>(), self.domain)),
            action: Some(action.to_owned()),
            case_id: discovery_case.then(|| format!("CASE-{}", self.rng.gen_range(100..140))),
        }
    }

    /// The next `n` events.
    pub fn batch(&mut self, n: usize) -> Vec<ViewEvent> {
        (0..n).map(|_| self.event()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_varied_within_range_and_deterministic() {
        let mut a = Generator::new(7, "acme.example", 1_000_000, 2_000_000);
        let mut b = Generator::new(7, "acme.example", 1_000_000, 2_000_000);
        let xs = a.batch(2000);
        assert_eq!(xs, b.batch(2000));
        assert!(xs.iter().all(|e| (1_000_000..=2_000_000).contains(&e.viewed) && e.message_date < e.viewed));
        let viewers: std::collections::HashSet<_> = xs.iter().map(|e| &e.viewer).collect();
        let sources: std::collections::HashSet<_> = xs.iter().map(|e| &e.source).collect();
        assert!(viewers.len() > 10 && sources.len() == 4);
        assert!(xs.iter().any(|e| e.discovery_case) && xs.iter().any(|e| !e.content_viewed));
        let ids: std::collections::HashSet<_> = xs.iter().map(|e| &e.event_id).collect();
        assert_eq!(ids.len(), xs.len());
    }
}
