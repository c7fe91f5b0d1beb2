//! Hostile input against every endpoint: NUL bytes, line breaks, 1 MiB strings,
//! invalid UTF-8, JSON nested 10 000 deep, numbers no integer holds, unknown fields
//! and wrong types, in every path, query, header and body field. The routes, their
//! parameters and their body schemas come from the OpenAPI document; a seeded random
//! phase then combines mutations. Requests go as an administrator and as a reporter's
//! API token, so the values reach past authentication into the services. Whatever
//! arrives, the answer is never a 5xx and nothing panics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Method;
use serde_json::{json, Value};
use verdict_testkit::TestApp;

/// Requests the suite sends at least.
const MIN_REQUESTS: usize = 10_000;
/// Requests of the random phase, after the systematic one.
const RANDOM_REQUESTS: usize = 1_500;
/// Requests in flight at once.
const CONCURRENCY: usize = 32;
/// Stands in a body for the hostile value, which is spliced in as raw bytes (so that
/// invalid UTF-8 and numbers no JSON library holds can be sent).
const PLACEHOLDER: &str = "\u{e000}hostile\u{e000}";
/// A megabyte, the size of the long strings.
const MIB: usize = 1 << 20;

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts every panic in this process (the services run in it), then reports it as
/// usual.
fn count_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            report(info);
        }));
    });
}

/// Raw values for paths, queries and headers.
fn hostile_texts() -> Vec<Vec<u8>> {
    let mut texts: Vec<Vec<u8>> = [
        "",
        "\0",
        "a\0b",
        "a\nb",
        "\r\n",
        " ",
        "\t",
        "\u{1b}[31m",
        "\u{7f}",
        "\u{202e}gnp.exe",
        "😀",
        "\u{feff}",
        "\u{ffff}",
        "..",
        "../../etc/passwd",
        "%00",
        "%",
        "' OR 1=1 --",
        "\"",
        "\\",
        "<script>alert(1)</script>",
        "1e400",
        "18446744073709551616",
        "-9223372036854775809",
        "-1",
        "0",
        "NaN",
        "*",
        "\"a\" OR \"b\"*",
        "NEAR(a b)",
        "run:*",
        "verdict.>",
        "$SRV.PING",
        "true",
        "null",
        "[]",
        "{\"a\":1}",
    ]
    .iter()
    .map(|text| text.as_bytes().to_vec())
    .collect();
    texts.push(vec![0xff, 0xfe, 0xfd]);
    texts.push(b"a\xc3".to_vec());
    texts.push(vec![b'x'; 300]);
    texts.push(vec![b'x'; 70_000]);
    texts.push(vec![b'x'; MIB]);
    texts.push(vec![b'['; 10_000]);
    texts
}

/// Raw JSON values for body fields: every hostile text as a string, then numbers,
/// wrong types and deep nesting.
fn hostile_json() -> Vec<Vec<u8>> {
    let mut values: Vec<Vec<u8>> = hostile_texts()
        .into_iter()
        .map(|text| match String::from_utf8(text) {
            Ok(text) => serde_json::to_vec(&text).unwrap(),
            Err(invalid) => [b"\"".as_slice(), invalid.as_bytes(), b"\""].concat(),
        })
        .collect();
    for raw in [
        "1e400",
        "-1e400",
        "1e-400",
        "18446744073709551616",
        "18446744073709551615",
        "-9223372036854775809",
        "-1",
        "0",
        "-0",
        "1.5",
        "4294967296",
        "true",
        "false",
        "null",
        "[]",
        "{}",
        "[1,\"a\",null]",
        "{\"unknown_field\":1}",
        "\"\\ud800\"",
        "\"\\u0000\"",
    ] {
        values.push(raw.as_bytes().to_vec());
    }
    values.push(deep_array(10_000));
    values.push(deep_object(10_000));
    values
}

fn deep_array(depth: usize) -> Vec<u8> {
    [vec![b'['; depth], vec![b']'; depth]].concat()
}

fn deep_object(depth: usize) -> Vec<u8> {
    let mut text = "{\"a\":".repeat(depth);
    text.push('1');
    text.push_str(&"}".repeat(depth));
    text.into_bytes()
}

/// Whole bodies that are not what any route takes.
fn hostile_bodies() -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = [
        "",
        "null",
        "[]",
        "\"x\"",
        "1e400",
        "{",
        "{}}",
        "{\"a\":1,\"a\":2}",
    ]
    .iter()
    .map(|body| body.as_bytes().to_vec())
    .collect();
    bodies.push(deep_array(10_000));
    bodies.push(deep_object(10_000));
    bodies.push(vec![0xff, 0xfe, b'{', b'}']);
    bodies.push(format!("{{\"x\":\"{}\"}}", "x".repeat(MIB)).into_bytes());
    bodies.push(b"\0\0\0\0".to_vec());
    bodies
}

/// Report bodies for the import route: nesting, entities, encodings, sizes.
fn hostile_reports() -> Vec<(Vec<u8>, &'static str)> {
    let xml = "application/xml";
    let mut reports = vec![
        ("<testsuite>".repeat(10_000).into_bytes(), xml),
        (
            br#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><testsuite name="&d;"><testcase name="&d;"/></testsuite>"#.to_vec(),
            xml,
        ),
        (b"<testsuite><testcase name=\"\0\"/></testsuite>".to_vec(), xml),
        (vec![0xff, 0xfe, b'<', b'a', b'>'], xml),
        (
            format!("<testsuite><testcase name=\"{}\"/></testsuite>", "x".repeat(MIB)).into_bytes(),
            xml,
        ),
        (b"<testsuite><testcase name=\"a\" time=\"1e400\"/></testsuite>".to_vec(), xml),
        (b"<testsuite tests=\"18446744073709551616\"><testcase/></testsuite>".to_vec(), xml),
        (b"<".to_vec(), xml),
        (b"".to_vec(), xml),
    ];
    let ctrf = "application/json";
    for body in hostile_bodies() {
        reports.push((body, ctrf));
    }
    reports.push((
        br#"{"results":{"tool":{"name":"x"},"summary":{"tests":1e400},"tests":[{"name":"a","status":"passed","duration":18446744073709551616}]}}"#.to_vec(),
        ctrf,
    ));
    reports
}

/// Percent-encodes every byte but the unreserved ones, so any value fits one path
/// segment or query value.
fn encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One route with what the document says about it.
#[derive(Debug, Clone)]
struct Endpoint {
    method: Method,
    template: String,
    path_params: Vec<String>,
    query_params: Vec<String>,
    /// The body's media type and a valid example of it.
    body: Option<(String, Value)>,
    public: bool,
}

/// Every operation of the OpenAPI document, plus the two routes it does not describe
/// (the live upgrade and the local-disk store's blob URLs).
fn endpoints(doc: &Value) -> Vec<Endpoint> {
    let mut endpoints = Vec::new();
    for (template, operations) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let named = |place: &str| -> Vec<String> {
                parameters
                    .iter()
                    .filter(|p| p["in"] == place)
                    .map(|p| p["name"].as_str().unwrap().to_owned())
                    .collect()
            };
            let body = operation["requestBody"]["content"]
                .as_object()
                .and_then(|content| content.iter().next())
                .map(|(media, content)| (media.clone(), example(doc, &content["schema"], 0)));
            endpoints.push(Endpoint {
                method,
                template: template.clone(),
                path_params: named("path"),
                query_params: named("query"),
                body,
                public: operation.get("security").is_none(),
            });
        }
    }
    endpoints.push(Endpoint {
        method: Method::GET,
        template: "/api/v1/live".into(),
        path_params: vec![],
        query_params: vec!["encoding".into()],
        body: None,
        public: false,
    });
    for method in [Method::GET, Method::PUT] {
        endpoints.push(Endpoint {
            method,
            template: "/blobs/{key}".into(),
            path_params: vec!["key".into()],
            query_params: vec!["expires".into(), "signature".into()],
            body: None,
            public: true,
        });
    }
    endpoints
}

/// A valid value of `schema`, so that mutating one field leaves the rest acceptable
/// and the mutation reaches the service. Strings with a format only their description
/// states get a known good value by schema name.
fn example(doc: &Value, schema: &Value, depth: usize) -> Value {
    if depth > 8 {
        return Value::Null;
    }
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        let known = match name {
            "Email" => Some(json!("hostile@verdict.test")),
            "Password" => Some(json!("a-password-for-tests")),
            "ProjectSlug" => Some(json!("hostile")),
            "Sha256Hex" => Some(json!("0".repeat(64))),
            "ContentType" => Some(json!("text/plain")),
            "ArtifactName" => Some(json!("hostile.txt")),
            "DisplayName" => Some(json!("hostile")),
            _ => None,
        };
        return known
            .unwrap_or_else(|| example(doc, &doc["components"]["schemas"][name], depth + 1));
    }
    if let Some(variants) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        let chosen = variants
            .iter()
            .find(|v| v["type"] != "null")
            .unwrap_or(&Value::Null);
        return example(doc, chosen, depth + 1);
    }
    if let Some(first) = schema["enum"].as_array().and_then(|values| values.first()) {
        return first.clone();
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds
            .iter()
            .find(|k| *k != "null")
            .and_then(Value::as_str)
            .unwrap_or("null"),
        other => other.as_str().unwrap_or("object"),
    };
    match kind {
        "object" => {
            let mut object = serde_json::Map::new();
            if let Some(properties) = schema["properties"].as_object() {
                for (name, property) in properties {
                    object.insert(name.clone(), example(doc, property, depth + 1));
                }
            }
            if schema["additionalProperties"].is_object() {
                let value = example(doc, &schema["additionalProperties"], depth + 1);
                object.insert("k".into(), value);
            }
            Value::Object(object)
        }
        "array" => json!([example(doc, &schema["items"], depth + 1)]),
        "string"
            if schema["description"]
                .as_str()
                .unwrap_or("")
                .contains("RFC 3339") =>
        {
            json!("2026-01-01T00:00:00Z")
        }
        "string" => {
            // Result statuses are plain strings in the schema, checked by the service.
            json!("passed")
        }
        "integer" | "number" => json!(1),
        "boolean" => json!(false),
        _ => Value::Null,
    }
}

/// JSON pointers of every value inside `value` (not the root), a few levels deep.
fn pointers(value: &Value, prefix: &str, out: &mut Vec<String>) {
    if prefix.matches('/').count() >= 4 {
        return;
    }
    match value {
        Value::Object(object) => {
            for (key, inner) in object {
                let pointer = format!("{prefix}/{key}");
                out.push(pointer.clone());
                pointers(inner, &pointer, out);
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                let pointer = format!("{prefix}/{index}");
                out.push(pointer.clone());
                pointers(inner, &pointer, out);
            }
        }
        _ => {}
    }
}

/// `base` with the value at `pointer` replaced by the raw JSON `raw`.
fn splice(base: &Value, pointer: &str, raw: &[u8]) -> Vec<u8> {
    let mut document = base.clone();
    *document
        .pointer_mut(pointer)
        .expect("pointer into the example") = json!(PLACEHOLDER);
    let text = serde_json::to_vec(&document).unwrap();
    let marker = serde_json::to_vec(&json!(PLACEHOLDER)).unwrap();
    replace_marker(&text, &marker, raw)
}

/// `base` with one more member, named by the raw JSON `raw_key`, in the object at
/// `pointer`.
fn with_key(base: &Value, pointer: &str, raw_key: &[u8], value: Value) -> Vec<u8> {
    let mut document = base.clone();
    if let Some(object) = document.pointer_mut(pointer).and_then(Value::as_object_mut) {
        object.insert(PLACEHOLDER.to_owned(), value);
    }
    let text = serde_json::to_vec(&document).unwrap();
    let marker = serde_json::to_vec(&json!(PLACEHOLDER)).unwrap();
    replace_marker(&text, &marker, raw_key)
}

/// `text` with the first `marker` replaced by `raw`.
fn replace_marker(text: &[u8], marker: &[u8], raw: &[u8]) -> Vec<u8> {
    let at = text
        .windows(marker.len())
        .position(|window| window == marker)
        .expect("the marker is in the document");
    [&text[..at], raw, &text[at + marker.len()..]].concat()
}

/// `base` without the member at `pointer` (an object's field).
fn without(base: &Value, pointer: &str) -> Option<Vec<u8>> {
    let (parent, key) = pointer.rsplit_once('/')?;
    let mut document = base.clone();
    document.pointer_mut(parent)?.as_object_mut()?.remove(key)?;
    Some(serde_json::to_vec(&document).unwrap())
}

/// Valid values of path parameters: real resources of the test's project, with
/// deletions and account changes aimed at resources kept for the purpose, so the rest
/// of the suite still finds what it reaches for.
struct Fixture {
    admin: String,
    reporter: String,
    run: String,
    victim_run: String,
    test_key: String,
    victim_user: String,
    victim_token: String,
    artifact: String,
    import: String,
}

impl Fixture {
    async fn new(app: &TestApp) -> Self {
        let admin = app.admin_token().await;
        app.project(&admin, "web").await;
        let (_, reporter) = app.api_token(&admin, "web", "reporter").await;
        let (victim_token, _) = app.api_token(&admin, "web", "viewer").await;
        let (victim_user, _) = app.user(&admin, "victim@verdict.test").await;
        let run = Self::run(app, &admin).await;
        let victim_run = Self::run(app, &admin).await;
        let posted = app
            .post(
                &admin,
                &format!("/api/v1/runs/{run}/results"),
                json!({ "results": [{ "suite": "s", "name": "t", "status": "failed", "message": "boom" }] }),
            )
            .await;
        assert_eq!(posted.status(), 202);
        let test_key = loop {
            let page: Value = app
                .get_as(&admin, &format!("/api/v1/runs/{run}/results"))
                .await
                .json()
                .await
                .unwrap();
            if let Some(key) = page["items"][0]["test_key"].as_str() {
                break key.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let declared = app
            .post(
                &admin,
                &format!("/api/v1/runs/{run}/artifacts"),
                json!({ "name": "a.txt", "content_type": "text/plain", "size": 1,
                        "sha256": "0".repeat(64) }),
            )
            .await;
        assert_eq!(declared.status(), 201);
        let artifact: Value = declared.json().await.unwrap();
        let imported = app
            .http
            .post(app.url("/api/v1/projects/web/imports"))
            .bearer_auth(&admin)
            .header("content-type", "application/xml")
            .body("<testsuite><testcase name=\"a\"/></testsuite>")
            .send()
            .await
            .unwrap();
        assert_eq!(imported.status(), 202);
        let import: Value = imported.json().await.unwrap();
        Self {
            admin,
            reporter,
            run,
            victim_run,
            test_key,
            victim_user,
            victim_token,
            artifact: artifact["id"].as_str().unwrap().to_owned(),
            import: import["id"].as_str().unwrap().to_owned(),
        }
    }

    async fn run(app: &TestApp, token: &str) -> String {
        let created = app
            .post(
                token,
                "/api/v1/projects/web/runs",
                json!({ "name": "hostile" }),
            )
            .await;
        assert_eq!(created.status(), 201);
        let run: Value = created.json().await.unwrap();
        run["id"].as_str().unwrap().to_owned()
    }

    fn valid(&self, endpoint: &Endpoint, param: &str) -> String {
        let deleting = endpoint.method == Method::DELETE;
        match param {
            "project" => "web".into(),
            "run" if deleting => self.victim_run.clone(),
            "run" => self.run.clone(),
            "test_key" => self.test_key.clone(),
            "user_id" => self.victim_user.clone(),
            "id" if endpoint.template.contains("/tokens/") => self.victim_token.clone(),
            "id" if endpoint.template.contains("/artifacts/") => self.artifact.clone(),
            "id" if endpoint.template.contains("/imports/") => self.import.clone(),
            _ => "x".into(),
        }
    }
}

/// One request of the suite.
struct Probe {
    method: Method,
    /// Path and query, already encoded.
    target: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<(Vec<u8>, String)>,
    token: Option<Arc<str>>,
}

impl Probe {
    /// What the probe was, short enough for a failure message.
    fn describe(&self) -> String {
        let target: String = self.target.chars().take(160).collect();
        let body = self
            .body
            .as_ref()
            .map(|(bytes, media)| {
                let shown: String = String::from_utf8_lossy(&bytes[..bytes.len().min(160)]).into();
                format!(" [{media}, {} bytes] {shown}", bytes.len())
            })
            .unwrap_or_default();
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(name, value)| {
                format!("{name}: {:.60}", String::from_utf8_lossy(value.as_bytes()))
            })
            .collect();
        let who = if self.token.is_some() {
            "authenticated"
        } else {
            "anonymous"
        };
        format!("{} {target} ({who}) {headers:?}{body}", self.method)
    }
}

/// Builds requests for one endpoint, one principal.
struct Builder<'a> {
    fixture: &'a Fixture,
    endpoint: &'a Endpoint,
    token: Option<Arc<str>>,
}

impl Builder<'_> {
    fn probe(
        &self,
        path_values: &BTreeMap<String, String>,
        query: &[(String, String)],
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Option<(Vec<u8>, String)>,
    ) -> Probe {
        let mut target = self.endpoint.template.clone();
        for param in &self.endpoint.path_params {
            let value = path_values
                .get(param)
                .cloned()
                .unwrap_or_else(|| encode(self.fixture.valid(self.endpoint, param).as_bytes()));
            target = target.replace(&format!("{{{param}}}"), &value);
        }
        if !query.is_empty() {
            // A family of parameters (`attr.{key}`) is used through one member.
            let pairs: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={v}", k.replace("{key}", "k")))
                .collect();
            target = format!("{target}?{}", pairs.join("&"));
        }
        Probe {
            method: self.endpoint.method.clone(),
            target,
            headers,
            body,
            token: self.token.clone(),
        }
    }

    fn valid_body(&self) -> Option<(Vec<u8>, String)> {
        self.endpoint
            .body
            .as_ref()
            .map(|(media, example)| (body_bytes(media, example), media.clone()))
    }

    /// Each path parameter, query parameter, header and body field made hostile in
    /// turn, the rest valid; and whole bodies that are not the route's.
    fn systematic(&self, out: &mut Vec<Probe>) {
        let texts = hostile_texts();
        let json = hostile_json();
        let none = BTreeMap::new();
        for param in &self.endpoint.path_params {
            for text in &texts {
                let values = BTreeMap::from([(param.clone(), encode(text))]);
                out.push(self.probe(&values, &[], vec![], self.valid_body()));
            }
        }
        for text in texts.iter().step_by(6) {
            let query = [("unknown_parameter".to_owned(), encode(text))];
            out.push(self.probe(&none, &query, vec![], self.valid_body()));
        }
        for name in &self.endpoint.query_params {
            for text in &texts {
                let query = [(name.clone(), encode(text))];
                out.push(self.probe(&none, &query, vec![], self.valid_body()));
            }
            let repeated = [(name.clone(), "1".into()), (name.clone(), "2".into())];
            out.push(self.probe(&none, &repeated, vec![], self.valid_body()));
            if name.contains("{key}") {
                let many: Vec<_> = (0..1000)
                    .map(|i| (name.replace("{key}", &format!("k{i}")), "v".to_owned()))
                    .collect();
                out.push(self.probe(&none, &many, vec![], self.valid_body()));
            }
        }
        for name in ["idempotency-key", "content-type", "authorization"] {
            for text in &texts {
                let value = match name {
                    "authorization" => [b"Bearer ".as_slice(), text].concat(),
                    _ => text.clone(),
                };
                let Ok(value) = HeaderValue::from_bytes(&value) else {
                    continue;
                };
                let header = (HeaderName::from_static(name), value);
                // The header replaces the body's own media type, or the token.
                let body = self.valid_body().map(|(bytes, _)| (bytes, String::new()));
                let mut probe = self.probe(&none, &[], vec![header], body);
                if name == "authorization" {
                    probe.token = None;
                }
                out.push(probe);
            }
        }
        match &self.endpoint.body {
            Some((media, _)) if media == "application/xml" => {
                for (report, media) in hostile_reports() {
                    out.push(self.probe(&none, &[], vec![], Some((report, media.into()))));
                }
            }
            Some((media, example)) => {
                let mut fields = Vec::new();
                pointers(example, "", &mut fields);
                let objects = std::iter::once("").chain(
                    fields
                        .iter()
                        .map(String::as_str)
                        .filter(|pointer| example.pointer(pointer).is_some_and(Value::is_object)),
                );
                for object in objects {
                    // Some of the string values (keys are strings), each with a short
                    // value and with one longer than any field takes.
                    for key in json.iter().take(texts.len()).step_by(3) {
                        for value in [json!("v"), json!("v".repeat(1025))] {
                            let body = with_key(example, object, key, value);
                            let body = Some((body, media.clone()));
                            out.push(self.probe(&none, &[], vec![], body));
                        }
                    }
                }
                for pointer in &fields {
                    for raw in &json {
                        let body = splice(example, pointer, raw);
                        out.push(self.probe(&none, &[], vec![], Some((body, media.clone()))));
                    }
                    if let Some(body) = without(example, pointer) {
                        out.push(self.probe(&none, &[], vec![], Some((body, media.clone()))));
                    }
                }
                for body in hostile_bodies() {
                    out.push(self.probe(&none, &[], vec![], Some((body, media.clone()))));
                }
            }
            None => {
                for body in hostile_bodies() {
                    let body = Some((body, "application/json".to_owned()));
                    out.push(self.probe(&none, &[], vec![], body));
                }
            }
        }
    }

    /// Up to three mutations at once, chosen by `random`.
    fn combined(&self, random: &mut Random, texts: &[Vec<u8>], json: &[Vec<u8>]) -> Probe {
        let mut path_values = BTreeMap::new();
        let mut query = Vec::new();
        let mut body = self.valid_body();
        for _ in 0..=random.below(3) {
            match random.below(3) {
                0 if !self.endpoint.path_params.is_empty() => {
                    let param = random.pick(&self.endpoint.path_params).clone();
                    path_values.insert(param, encode(random.pick::<Vec<u8>>(texts)));
                }
                1 if !self.endpoint.query_params.is_empty() => {
                    let name = random.pick(&self.endpoint.query_params).clone();
                    query.push((name, encode(random.pick::<Vec<u8>>(texts))));
                }
                _ => {
                    if let Some((media, example)) = &self.endpoint.body {
                        let mut fields = Vec::new();
                        pointers(example, "", &mut fields);
                        if !fields.is_empty() && media == "application/json" {
                            let pointer = random.pick(&fields);
                            body = Some((
                                splice(example, pointer, random.pick::<Vec<u8>>(json)),
                                media.clone(),
                            ));
                        }
                    }
                }
            }
        }
        self.probe(&path_values, &query, vec![], body)
    }
}

fn body_bytes(media: &str, example: &Value) -> Vec<u8> {
    if media == "application/xml" {
        b"<testsuite><testcase name=\"a\"/></testsuite>".to_vec()
    } else {
        serde_json::to_vec(example).unwrap()
    }
}

/// A small seeded generator (xorshift), so a failing run can be repeated.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// What went wrong with one probe.
struct Finding {
    probe: String,
    answer: String,
}

/// Sends `probe`; a 5xx, or no answer at all, is a finding. A probe that gets no
/// answer is sent once more on a new connection: the first may have gone out on a
/// kept-alive connection the gateway was closing at that moment.
async fn send(app: &TestApp, fresh: &reqwest::Client, probe: Probe) -> Option<Finding> {
    if probe.target.len() > MAX_CLIENT_URI {
        return send_raw(app, &probe).await;
    }
    let answer = match attempt(app, &app.http, &probe).await {
        Err(_) => attempt(app, fresh, &probe).await,
        answered => answered,
    };
    let answer = match answer {
        Ok(response) if response.status().is_server_error() => {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            format!("{status} {}", text.chars().take(300).collect::<String>())
        }
        Ok(response) => {
            let _ = response.bytes().await;
            return None;
        }
        Err(err) => format!("no answer: {err}"),
    };
    Some(Finding {
        probe: probe.describe(),
        answer,
    })
}

async fn attempt(
    app: &TestApp,
    client: &reqwest::Client,
    probe: &Probe,
) -> reqwest::Result<reqwest::Response> {
    let mut request = client.request(probe.method.clone(), app.url(&probe.target));
    if let Some(token) = &probe.token {
        request = request.bearer_auth(token);
    }
    if let Some((bytes, media)) = &probe.body {
        if !media.is_empty() {
            request = request.header("content-type", media.as_str());
        }
        request = request.body(bytes.clone());
    }
    for (name, value) in &probe.headers {
        request = request.header(name.clone(), value.clone());
    }
    request.send().await
}

/// The longest URI the HTTP client builds; longer ones go over a plain socket.
const MAX_CLIENT_URI: usize = 60_000;

/// Sends a probe whose request line no HTTP client library builds, and reads the
/// status line of the answer. The gateway may refuse such a head before it has read
/// it all and close the connection: a reset then stands for the refusal.
async fn send_raw(app: &TestApp, probe: &Probe) -> Option<Finding> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: verdict\r\n",
        probe.method, probe.target
    );
    if let Some(token) = &probe.token {
        head.push_str(&format!("authorization: Bearer {token}\r\n"));
    }
    let body = probe
        .body
        .as_ref()
        .map(|(bytes, _)| bytes.as_slice())
        .unwrap_or_default();
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut stream = tokio::net::TcpStream::connect(app.address()).await.unwrap();
    let (mut reader, mut writer) = stream.split();
    let write = async {
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.write_all(body).await;
    };
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), reader.read_to_end(&mut answer));
    let ((), read) = tokio::join!(write, read);
    let status_line = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let server_error = status_line
        .split(' ')
        .nth(1)
        .is_some_and(|code| code.starts_with('5'));
    match read {
        Err(_) => Some(Finding {
            probe: probe.describe(),
            answer: "no answer within 30 s".into(),
        }),
        _ if server_error => Some(Finding {
            probe: probe.describe(),
            answer: status_line,
        }),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_hostile_request_gets_a_server_error_or_makes_anything_panic() {
    count_panics();
    let app = TestApp::spawn_with(&[
        ("VERDICT_RATE_READ", "1000000/s"),
        ("VERDICT_RATE_WRITE", "1000000/s"),
        ("VERDICT_RATE_LOGIN", "1000000/m"),
        // Hundreds of hostile sign-ins queue for the hashing slots; on a loaded machine
        // 2 s of waiting ran out and they got the designed 503 "retry shortly".
        ("VERDICT_AUTH_HASH_QUEUE_WAIT", "4s"),
    ])
    .await;
    let fixture = Fixture::new(&app).await;
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let endpoints = endpoints(&doc);
    assert!(
        endpoints.len() >= 35,
        "only {} routes documented",
        endpoints.len()
    );

    let principals: [Option<Arc<str>>; 2] = [
        Some(fixture.admin.as_str().into()),
        Some(fixture.reporter.as_str().into()),
    ];
    let mut probes = Vec::new();
    let mut builders = Vec::new();
    for endpoint in &endpoints {
        let tokens: Vec<Option<Arc<str>>> = if endpoint.public {
            vec![None]
        } else {
            principals.to_vec()
        };
        for token in tokens {
            builders.push(Builder {
                fixture: &fixture,
                endpoint,
                token,
            });
        }
    }
    for builder in &builders {
        builder.systematic(&mut probes);
    }
    let (texts, json) = (hostile_texts(), hostile_json());
    let mut random = Random(0x5eed_cafe_f00d_d00d);
    for _ in 0..RANDOM_REQUESTS {
        let builder = random.pick(&builders);
        probes.push(builder.combined(&mut random, &texts, &json));
    }
    let sent = probes.len();

    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let started = Instant::now();
    let findings: Vec<Finding> = futures::stream::iter(probes)
        .map(|probe| send(&app, &fresh, probe))
        .buffer_unordered(CONCURRENCY)
        .filter_map(|finding| async move { finding })
        .collect()
        .await;
    let elapsed = started.elapsed();

    let report: Vec<String> = findings
        .iter()
        .take(40)
        .map(|f| format!("{}\n    -> {}", f.probe, f.answer))
        .collect();
    assert!(
        findings.is_empty(),
        "{} of {sent} requests failed:\n{}",
        findings.len(),
        report.join("\n")
    );
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
    assert!(sent >= MIN_REQUESTS);
    println!("{sent} hostile requests in {elapsed:?}");
}
