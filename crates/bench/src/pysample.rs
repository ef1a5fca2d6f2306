//! The seed's Python sample, adapted to page: its own lines, with its variables filled in and
//! its request lines looped over `meta.pagination.next`, writing each record as a JSON line.

/// The seed's Python block: the project's one vendored copy, verbatim from the seed page.
pub const SEED_SAMPLE: &str = include_str!("../../cli/tests/fixtures/seed_sample.py");

/// What the adapted sample is filled in with.
#[derive(Debug, Clone)]
pub struct PagerValues<'a> {
    /// The server's base URL.
    pub base_url: &'a str,
    /// The access key.
    pub access_key: &'a str,
    /// The secret key.
    pub secret_key: &'a str,
    /// The application id.
    pub app_id: &'a str,
    /// The application key.
    pub app_key: &'a str,
    /// The range's start (`2024-06-01T00:00:00+0000`).
    pub start: &'a str,
    /// The range's end.
    pub end: &'a str,
    /// Records per page.
    pub page_size: u32,
}

fn py_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The sample with its values filled in and its request looped over page tokens; it writes
/// every record to standard output as one JSON line, and exits 1 on a failed answer.
/// Fails if `sample` lacks one of the lines it adapts.
pub fn pager(sample: &str, v: &PagerValues<'_>) -> Result<String, String> {
    let lines: Vec<&str> = sample.lines().collect();
    let find = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.trim_start().starts_with(prefix))
            .ok_or_else(|| format!("the sample has no line {prefix:?}"))
    };
    let loop_from = find("# Generate request header values")?;
    let post = find("r = requests.post(")?;
    if post < loop_from {
        return Err("the sample's request comes before its signing".into());
    }
    let set = |line: &str| -> String {
        let t = line.trim_start();
        let var =
            |name: &str, value: &str| t.starts_with(&format!("{name} = ")).then(|| format!("{name} = \"{value}\""));
        var("base_url", v.base_url)
            .or_else(|| var("access_key", v.access_key))
            .or_else(|| var("secret_key", v.secret_key))
            .or_else(|| var("app_id", v.app_id))
            .or_else(|| var("app_key", v.app_key))
            .or_else(|| t.starts_with("'query':").then(|| "'query': '',".to_owned()))
            .or_else(|| t.starts_with("'start':").then(|| format!("'start': {},", py_str(v.start))))
            .or_else(|| t.starts_with("'end':").then(|| format!("'end': {}", py_str(v.end))))
            .unwrap_or_else(|| line.to_owned())
    };
    let mut out = String::new();
    out.push_str("import json\nimport sys\n");
    for line in &lines[..loop_from] {
        out.push_str(&set(line));
        out.push('\n');
    }
    out.push_str("token = None\ncount = 0\nout = sys.stdout\nwhile True:\n");
    for line in &lines[loop_from..post] {
        out.push_str("    ");
        out.push_str(&set(line));
        out.push('\n');
    }
    let n = v.page_size;
    out.push_str(&format!(
        "    if token:\n        payload['meta'] = {{'pagination': {{'pageSize': {n}, 'pageToken': token}}}}\n    \
         else:\n        payload['meta'] = {{'pagination': {{'pageSize': {n}}}}}\n"
    ));
    out.push_str("    ");
    out.push_str(lines[post].trim_start());
    out.push('\n');
    out.push_str(
        "    body = r.json()\n    if r.status_code != 200 or body.get('fail'):\n        \
         sys.stderr.write(r.text[:500] + '\\n')\n        sys.exit(1)\n    \
         for rec in body['data']:\n        out.write(json.dumps(rec))\n        out.write('\\n')\n    \
         count += len(body['data'])\n    \
         token = body.get('meta', {}).get('pagination', {}).get('next')\n    \
         if not token:\n        break\n\
         out.flush()\nsys.stderr.write('%d records\\n' % count)\n",
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_filled_in_and_looped() {
        let v = PagerValues {
            base_url: "http://127.0.0.1:9",
            access_key: "AK",
            secret_key: "U2VjcmV0S2V5",
            app_id: "APP",
            app_key: "KEY",
            start: "2024-11-27T00:00:00+0000",
            end: "2024-12-31T23:59:59+0000",
            page_size: 500,
        };
        let py = pager(SEED_SAMPLE, &v).unwrap();
        assert!(py.contains("base_url = \"http://127.0.0.1:9\"\n"), "{py}");
        assert!(py.contains("secret_key = \"U2VjcmV0S2V5\"\n") && py.contains("app_key = \"KEY\"\n"), "{py}");
        assert!(
            py.contains("    'start': '2024-11-27T00:00:00+0000',\n    'end': '2024-12-31T23:59:59+0000'\n"),
            "{py}"
        );
        assert!(py.contains("\n    request_id = str(uuid.uuid4())\n"), "the signing is inside the loop: {py}");
        assert!(py.contains("\n    r = requests.post(url=url, headers=headers, data=str(payload))\n"), "{py}");
        assert!(py.contains("'pageSize': 500, 'pageToken': token"), "{py}");
        assert!(!py.contains("print(r.text)") && !py.contains("YOUR "), "{py}");
        assert!(pager("import requests\n", &v).is_err());
    }
}
