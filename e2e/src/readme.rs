//! The README's sample outputs, compared with what a real run prints, so
//! that they cannot go stale.

use std::path::Path;

/// The README at the checkout's root.
pub fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The sample output the README shows for `command`: in a `text` block, the
/// lines after `$ command` up to the next `$ ` line or the block's end; in a
/// `sh` block, the `# ` lines right after the `command` line, unprefixed.
pub fn sample(readme: &str, command: &str) -> Vec<String> {
    let mut lines = readme.lines().skip_while(|l| {
        let l = l.trim_end();
        l != format!("$ {command}") && l.split("  #").next().map(str::trim_end) != Some(command)
    });
    let Some(first) = lines.next() else {
        panic!("the README shows no `{command}`");
    };
    let shown: Vec<String> = if first.starts_with("$ ") {
        lines
            .take_while(|l| !l.starts_with("$ ") && !l.starts_with("```"))
            .map(str::to_string)
            .collect()
    } else {
        lines.map_while(|l| l.strip_prefix("# ")).map(str::to_string).collect()
    };
    assert!(!shown.is_empty(), "the README shows no output for `{command}`");
    shown
}

/// The `$ ` commands of the `text` blocks of the README section titled
/// `title`, in order, each with the output shown under it.
pub fn session(readme: &str, title: &str) -> Vec<(String, Vec<String>)> {
    let heading = format!("## {title}");
    let section = readme
        .split_once(&heading)
        .map(|(_, rest)| rest.split("\n## ").next().unwrap_or_default())
        .unwrap_or_else(|| panic!("the README has no section {heading}"));
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_text = false;
    for line in section.lines() {
        if line.starts_with("```") {
            in_text = !in_text && line == "```text";
            continue;
        }
        if !in_text {
            continue;
        }
        match (line.strip_prefix("$ "), steps.last_mut()) {
            (Some(command), _) => steps.push((command.to_string(), Vec::new())),
            (None, Some((_, shown))) => shown.push(line.to_string()),
            (None, None) => panic!("output before any command in {heading}: {line}"),
        }
    }
    steps
}

/// `Ok` when `actual` is what `sample` shows: `...` in a line stands for any
/// text, a line of only `...` for any number of lines; trailing blanks and
/// blank lines at the end do not count.
pub fn matches(sample: &[String], actual: &str) -> Result<(), String> {
    let trim = |lines: Vec<String>| {
        let mut lines: Vec<String> = lines.into_iter().map(|l| l.trim_end().to_string()).collect();
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
    };
    let want = trim(sample.to_vec());
    let got = trim(actual.lines().map(str::to_string).collect());
    if lines_match(&want, &got) {
        Ok(())
    } else {
        Err(format!(
            "the README shows\n{}\nbut the command printed\n{}",
            want.join("\n"),
            got.join("\n")
        ))
    }
}

fn lines_match(want: &[String], got: &[String]) -> bool {
    match want.split_first() {
        None => got.is_empty(),
        Some((w, rest)) if w.trim() == "..." => (0..=got.len()).any(|k| lines_match(rest, &got[k..])),
        Some((w, rest)) => got
            .split_first()
            .is_some_and(|(g, more)| line_matches(w, g) && lines_match(rest, more)),
    }
}

fn line_matches(want: &str, got: &str) -> bool {
    let parts: Vec<&str> = want.split("...").collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return want == got;
    }
    if !got.starts_with(first) || !got[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &got[first.len()..got.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

/// `Ok` when the kubectl table `actual` has the rows of `sample`, cell for
/// cell, except the last column (AGE) and the columns' widths.
pub fn same_table(sample: &[String], actual: &str) -> Result<(), String> {
    let cells = |line: &str| {
        let mut cells: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        cells.pop();
        cells
    };
    let want: Vec<Vec<String>> = sample.iter().map(|l| cells(l)).collect();
    let got: Vec<Vec<String>> = actual.lines().filter(|l| !l.trim().is_empty()).map(cells).collect();
    if want == got {
        Ok(())
    } else {
        Err(format!(
            "the README shows\n{}\nbut kubectl printed\n{actual}",
            sample.join("\n")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "text\n\n```text\n$ kubectl get fp -n demo\nNAME   AGE\na      1s\n$ other\n```\n\
                       ```sh\nkubectl get fp a -n shop    # why\n# NAME   AGE\n# a      2s\nkubectl patch\n```\n";

    #[test]
    fn samples_are_found_in_text_and_sh_blocks() {
        assert_eq!(sample(DOC, "kubectl get fp -n demo"), ["NAME   AGE", "a      1s"]);
        assert_eq!(sample(DOC, "kubectl get fp a -n shop"), ["NAME   AGE", "a      2s"]);
    }

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    #[test]
    fn ellipses_stand_for_text_and_lines() {
        let shown = lines("a ... c\n  ...\nend: ...\n");
        assert_eq!(matches(&shown, "a b c\nx\ny\nend: 3\n\n"), Ok(()));
        assert_eq!(matches(&shown, "a  c\nend: x\n"), Ok(()));
        assert!(matches(&shown, "a b d\nend: 3").is_err());
        assert!(matches(&shown, "a b c\nx").is_err());
        assert!(matches(&lines("exact"), "exact\nmore").is_err());
        // An ellipsis cannot overlap the text around it.
        assert!(matches(&lines("ab...ba"), "aba").is_err());
    }

    #[test]
    fn a_session_is_the_commands_of_a_section_with_their_output() {
        let doc = "## One\n```text\n$ a\n1\n```\nprose\n```sh\n$ not this\n```\n```text\n$ b\n$ c\n3\n```\n## Two\n```text\n$ d\n```\n";
        assert_eq!(
            session(doc, "One"),
            [
                ("a".to_string(), lines("1")),
                ("b".to_string(), vec![]),
                ("c".to_string(), lines("3"))
            ]
        );
    }

    #[test]
    fn tables_differ_only_in_age_and_width() {
        let shown = sample(DOC, "kubectl get fp -n demo");
        assert_eq!(same_table(&shown, "NAME AGE\na    3m\n"), Ok(()));
        assert!(same_table(&shown, "NAME AGE\nb    1s\n").is_err());
        assert!(same_table(&shown, "NAME AGE\na    1s\nc 1s\n").is_err());
    }
}
