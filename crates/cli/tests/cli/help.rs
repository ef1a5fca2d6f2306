//! `viewlog --help` and every subcommand's `--help` (found from the help text itself, so that
//! subcommands added later are covered too).

use crate::support::*;

/// The names listed under "Commands:" in a help text, without `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim_end() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[track_caller]
fn help(args: &[&str]) -> String {
    let dir = std::env::temp_dir();
    let out = run(viewlog(&dir).args(args), None);
    out.ok();
    let usage = format!(
        "Usage: viewlog {}",
        args.iter().filter(|a| !a.starts_with('-') && **a != "help").cloned().collect::<Vec<_>>().join(" ")
    );
    assert!(out.stdout.contains(usage.trim_end()), "{args:?}: no {usage:?} in:\n{}", out.stdout);
    out.stdout
}

#[test]
fn every_command_has_help() {
    let top = help(&["--help"]);
    let commands = subcommands(&top);
    for expected in ["serve", "demo", "import", "account", "role", "user", "app", "key"] {
        assert!(commands.iter().any(|c| c == expected), "{expected} missing from viewlog --help:\n{top}");
    }
    let mut checked = 0;
    for command in &commands {
        let text = help(&[command, "--help"]);
        help(&["help", command]);
        checked += 1;
        for nested in subcommands(&text) {
            help(&[command, &nested, "--help"]);
            checked += 1;
        }
    }
    assert!(checked >= 8 + 4 + 2 + 6 + 4 + 3, "only {checked} help texts");
    let version = run(viewlog(&std::env::temp_dir()).arg("--version"), None);
    assert!(version.ok().stdout.starts_with("viewlog "), "{}", version.stdout);
}
