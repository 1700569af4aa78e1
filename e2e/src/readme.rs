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

    #[test]
    fn tables_differ_only_in_age_and_width() {
        let shown = sample(DOC, "kubectl get fp -n demo");
        assert_eq!(same_table(&shown, "NAME AGE\na    3m\n"), Ok(()));
        assert!(same_table(&shown, "NAME AGE\nb    1s\n").is_err());
        assert!(same_table(&shown, "NAME AGE\na    1s\nc 1s\n").is_err());
    }
}
