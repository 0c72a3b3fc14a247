//! Issue 32's acceptance on `chatctl serve` in local mode: people chat in rooms that follow
//! the platform's permissions, on the embedded Conversation Service, through the local
//! browser API, with the webhook → notifier path running on what they post.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Server, call, operation, serve, temp_dir};
use crate::notifications::{outbox, subscribe_and_confirm};
use crate::platform::platform;

/// A context token from the development token API.
async fn context_token(server: &Server, identity: &str, contexts: &str) -> String {
    token_with_roles(server, identity, contexts, "").await
}

/// The Twilio access token `createChatToken` answers (and so provisions) for a context token.
async fn access_token(server: &Server, token: &str) -> String {
    let variables = json!({"deviceId": "browser", "token": token});
    let body = operation(server, "createChatToken", variables).await;
    body["data"]["createChatToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

/// One chat client of the browser API.
struct Client<'a> {
    server: &'a Server,
    bearer: Option<String>,
}

impl<'a> Client<'a> {
    /// A client with the access token `createChatToken` answers for `token`.
    async fn of(server: &'a Server, token: &str) -> Client<'a> {
        Client {
            server,
            bearer: Some(access_token(server, token).await),
        }
    }

    /// A request of the browser API, with this client's bearer if it has one.
    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let request = match &self.bearer {
            Some(bearer) => request.bearer_auth(bearer),
            None => request,
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Posts `body` in `context`: the status.
    async fn says(&self, context: &str, body: &str) -> StatusCode {
        let path = format!("conversations/{context}/messages");
        self.post(&path, json!({ "body": body })).await.0
    }

    fn url(&self, path: &str) -> String {
        format!("{}/local/v1/{path}", self.server.base)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Client::new().get(self.url(path))).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Client::new().post(self.url(path)).json(&body))
            .await
    }

    /// The event stream, until its first `ready`.
    async fn events(&self) -> Events {
        let response = reqwest::Client::new()
            .get(format!("{}/local/v1/events", self.server.base))
            .bearer_auth(self.bearer.as_deref().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut events = Events {
            response,
            buffer: String::new(),
        };
        assert_eq!(events.next().await.0, "ready");
        events
    }

    async fn conversation(&self, context: &str) -> Value {
        let (status, body) = self.get("conversations").await;
        assert_eq!(status, 200, "{body}");
        body["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["context"] == context)
            .cloned()
            .unwrap_or(Value::Null)
    }
}

struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// The data of the next event called `name`, after others (sam joining random, say).
    async fn until(&mut self, name: &str) -> Value {
        loop {
            let (event, data) = self.next().await;
            if event == name {
                return data;
            }
        }
    }

    /// The next event's name and data (keep-alive comments skipped); fails after 10 s.
    async fn next(&mut self) -> (String, Value) {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let field = |name: &str| {
                        block
                            .lines()
                            .find_map(|l| l.strip_prefix(name))
                            .map(|v| v.trim().to_owned())
                    };
                    if let (Some(event), Some(data)) = (field("event:"), field("data:")) {
                        return (event, serde_json::from_str(&data).unwrap());
                    }
                    continue;
                }
                let chunk = self
                    .response
                    .chunk()
                    .await
                    .unwrap()
                    .expect("the stream ended");
                self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .expect("an event within 10 s")
    }
}

/// The email notifications counted with `outcome` (`sent`, `folded`, …).
async fn email_notifications(server: &Server, outcome: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series =
        format!("context_chat_notifications_total{{channel=\"email\",outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series)?.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// Waits until the email notifications counted with `outcome` reach `at_least`.
async fn counted(server: &Server, outcome: &str, at_least: f64) {
    let what = format!("{at_least} {outcome}");
    eventually(&what, async || {
        email_notifications(server, outcome).await >= at_least
    })
    .await;
}

/// Waits up to 15 s for `done`.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..150 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within 15 s");
}

#[tokio::test]
async fn people_chat_in_the_rooms_their_tokens_name_and_leave_when_the_platform_says() {
    let dir = temp_dir("local-chat");
    // A 2-second digest window, so the flush after it is seen here.
    let window = [("CHAT_NOTIFY_WINDOW_SECS", "2".to_owned())];
    let server = serve(&dir, &window);
    let alex_token = server.token.clone().unwrap(); // contexts general, random
    let sam_token = context_token(&server, "sam", "general").await;
    let alex = Client::of(&server, &alex_token).await;
    let sam = Client::of(&server, &sam_token).await;
    // alex wants email about general, from a confirmed address; alex has no stream open, so
    // alex is offline.
    subscribe_and_confirm(&server, &dir, &alex_token, "alex@example.org").await;

    let mut sams_events = sam.events().await;
    let general = alex.conversation("general").await;
    assert_eq!(general["unread"], 0);
    assert!(general["lastMessage"].is_null());
    assert!(alex.conversation("random").await.is_object());
    assert!(sam.conversation("random").await.is_null(), "not sam's");

    // alex writes; sam hears it live, and it waits unread.
    let text = "Grüße, sam! Der Container ist da 🚢 ".repeat(10);
    let (status, posted) = alex
        .post("conversations/general/messages", json!({"body": text}))
        .await;
    assert_eq!(status, 201, "{posted}");
    assert_eq!(posted["message"]["index"], 0);
    assert_eq!(posted["message"]["author"], "alex");
    let (event, data) = sams_events.next().await;
    assert_eq!(event, "message", "{data}");
    assert_eq!(data["context"], "general");
    assert_eq!(data["message"]["body"], text.as_str());
    let (_, reply) = sam
        .post(
            "conversations/general/messages",
            json!({"body": "On my way."}),
        )
        .await;
    assert_eq!(reply["message"]["index"], 1);
    // The webhook → queue → notifier path runs on it: alex, offline, gets exactly one email.
    eventually("alex's email", async || {
        outbox(&dir, "alex@example.org").len() == 2
    })
    .await;
    let mail = &outbox(&dir, "alex@example.org")[1];
    assert!(
        mail.contains("sam wrote") && mail.contains("On my way."),
        "{mail}"
    );
    assert!(
        !mail.contains("Grüße"),
        "alex's own message is not mailed to alex"
    );
    // A second message within the window folds into the next digest: no second email.
    sam.post(
        "conversations/general/messages",
        json!({"body": "Five minutes."}),
    )
    .await;
    counted(&server, "folded", 1.0).await;
    assert_eq!(outbox(&dir, "alex@example.org").len(), 2);
    assert_eq!(email_notifications(&server, "sent").await, 1.0);
    assert_eq!(alex.conversation("general").await["unread"], 3);
    let (status, read) = alex
        .post("conversations/general/read", json!({"index": 2}))
        .await;
    assert_eq!((status, &read["unread"]), (StatusCode::OK, &json!(0)));
    // alex read it before the window's flush: the flush sends no email for what was read
    // (and says so: skipped, read).
    counted(&server, "skipped_read", 1.0).await;
    assert_eq!(email_notifications(&server, "folded").await, 1.0);
    assert_eq!(
        outbox(&dir, "alex@example.org").len(),
        2,
        "read before the flush"
    );
    // While alex's stream is open alex is online: the notifier asks the embedded service's
    // reachability and sends nothing.
    let mut alexs_events = alex.events().await;
    sam.post(
        "conversations/general/messages",
        json!({"body": "Are you there?"}),
    )
    .await;
    let heard = alexs_events.until("message").await;
    assert_eq!(heard["message"]["body"], "Are you there?");
    assert_eq!(heard["message"]["author"], "sam");
    counted(&server, "skipped_online", 1.0).await;
    assert_eq!(
        outbox(&dir, "alex@example.org").len(),
        2,
        "online: no email"
    );
    drop(alexs_events);
    alex.post("conversations/general/read", json!({"index": 3}))
        .await;
    let (_, page) = alex.get("conversations/general/messages?limit=1").await;
    assert_eq!(page["messages"][0]["index"], 3);
    assert_eq!(page["hasMore"], true);
    let (_, older) = alex
        .get("conversations/general/messages?before=1&limit=100")
        .await;
    assert_eq!(older["messages"][0]["body"], text.as_str());
    assert_eq!(older["hasMore"], false);
    // Typing is told to the others.
    let (status, _) = alex.post("conversations/general/typing", json!({})).await;
    assert_eq!(status, 204);
    // (sam's stream told sam's own message first, as to sam's other devices.)
    let data = sams_events.until("typing").await;
    assert_eq!(data["context"], "general");
    assert_eq!(data["identity"], "alex");

    // Refusals change nothing.
    let nobody = Client {
        server: &server,
        bearer: None,
    };
    assert_eq!(
        nobody.get("conversations").await.0,
        StatusCode::UNAUTHORIZED
    );
    let forged = Client {
        server: &server,
        bearer: Some(format!("{}x", alex.bearer.as_deref().unwrap())),
    };
    assert_eq!(
        forged.get("conversations").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(sam.says("random", "let me in").await, StatusCode::FORBIDDEN);
    assert!(alex.conversation("random").await["lastMessage"].is_null());
    let long = "x".repeat(1_601);
    for (path, body) in [
        ("conversations/general/messages", json!({"body": long})),
        ("conversations/general/messages", json!({"body": "  "})),
        ("conversations/general/messages", json!({"text": "hi"})),
        ("conversations/general/read", json!({"index": 99})),
    ] {
        assert_eq!(
            alex.post(path, body.clone()).await.0,
            StatusCode::BAD_REQUEST,
            "{body}"
        );
    }
    assert_eq!(
        alex.get("conversations/general/messages?limit=101").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        alex.conversation("general").await["lastMessage"]["index"],
        3
    );

    // The platform revokes sam (`chatctl platform revoke-identity`, through the platform
    // API): sam's stream says the membership ended, and sam may read or post no more.
    let revoked = platform(&server, &dir, &["revoke-identity", "--identity", "sam"]);
    assert!(revoked.status.success(), "{revoked:?}");
    let data = sams_events.until("membershipEnded").await;
    assert_eq!(data["context"], "general");
    assert_eq!(
        sam.get("conversations/general/messages").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        sam.says("general", "still here?").await,
        StatusCode::FORBIDDEN
    );

    // A restart keeps the rooms, who is in them and what was said (the local credentials
    // too: alex's access token still works).
    let alex_bearer = alex.bearer.clone();
    drop(sams_events);
    drop(server);
    let server = serve(&dir, &window);
    let alex = Client {
        server: &server,
        bearer: alex_bearer,
    };
    let (status, history) = alex.get("conversations/general/messages").await;
    assert_eq!(status, 200, "{history}");
    let bodies: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        [
            text.as_str(),
            "On my way.",
            "Five minutes.",
            "Are you there?"
        ]
    );
    assert_eq!(alex.conversation("general").await["lastReadIndex"], 3);
    let (_, next) = alex
        .post("conversations/general/messages", json!({"body": "Back."}))
        .await;
    assert_eq!(next["message"]["index"], 4);
    assert_ne!(next["message"]["sid"], history["messages"][0]["sid"]);
    #[cfg(unix)]
    for file in [
        "twilio-emulator.sqlite3",
        "twilio-api-secret",
        "twilio-auth-token",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
}

/// `chatctl platform …`'s answer, which must succeed, as JSON.
fn platform_json(server: &Server, dir: &std::path::Path, args: &[&str]) -> Value {
    let out = platform(server, dir, args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `chatctl platform …`'s refusal, which must fail: what it says.
fn platform_refusal(server: &Server, dir: &std::path::Path, args: &[&str]) -> String {
    let out = platform(server, dir, args);
    assert!(!out.status.success(), "{args:?} succeeded: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn the_platform_titles_rooms_and_reads_what_its_users_have_not() {
    let dir = temp_dir("local-rooms");
    let server = serve(&dir, &[]);
    let alex_token = server.token.clone().unwrap(); // contexts general, random
    let sam_token = context_token(&server, "sam", "general").await;
    let alex = Client::of(&server, &alex_token).await;
    let sam = Client::of(&server, &sam_token).await;
    for body in ["one", "two", "three"] {
        assert_eq!(sam.says("general", body).await, StatusCode::CREATED);
    }
    let unread = |context: &str| {
        let counts = platform_json(&server, &dir, &["unread-counts", "--identity", "alex"]);
        let all = counts.as_array().unwrap().clone();
        assert_eq!(all.len(), 2, "{counts}");
        all.into_iter().find(|c| c["context"] == context).unwrap()
    };
    // Before alex reads anything Twilio does not count; then it counts from the horizon.
    assert!(unread("general")["unread"].is_null());
    assert_eq!(
        alex.post("conversations/general/read", json!({"index": 0}))
            .await
            .0,
        200
    );
    let general = unread("general");
    assert_eq!(
        (
            general["unread"].as_i64(),
            general["lastReadIndex"].as_i64()
        ),
        (Some(2), Some(0))
    );
    assert_eq!(
        alex.post("conversations/general/read", json!({"index": 2}))
            .await
            .0,
        200
    );
    assert_eq!(unread("general")["unread"], 0);

    // A title for general: what the widget's rooms show.
    let renamed = platform_json(
        &server,
        &dir,
        &[
            "update-context",
            "--context",
            "general",
            "--title",
            "Shipment 42 — Hamburg",
        ],
    );
    assert_eq!(
        renamed,
        json!({"context": "general", "title": "Shipment 42 — Hamburg"})
    );
    assert_eq!(
        alex.conversation("general").await["title"],
        "Shipment 42 — Hamburg"
    );
    assert_eq!(alex.conversation("random").await["title"], "random");

    // Refusals change nothing.
    let blank = platform_refusal(
        &server,
        &dir,
        &["update-context", "--context", "general", "--title", "  "],
    );
    assert!(
        blank.contains("BadRequest") && blank.contains("title"),
        "{blank}"
    );
    let none = platform_refusal(
        &server,
        &dir,
        &["update-context", "--context", "nowhere", "--title", "X"],
    );
    assert!(none.contains("NotFound"), "{none}");
    let read_only = platform_refusal(
        &server,
        &dir,
        &[
            "--scope",
            "chat:read",
            "update-context",
            "--context",
            "general",
            "--title",
            "Mine",
        ],
    );
    assert!(read_only.contains("AccessDenied"), "{read_only}");
    assert_eq!(
        alex.conversation("general").await["title"],
        "Shipment 42 — Hamburg"
    );
}

#[tokio::test]
async fn context_access_says_who_could_read_a_room_when_and_on_whose_authority() {
    let dir = temp_dir("local-access");
    let server = serve(&dir, &[]);
    let client: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("platform-client.json")).unwrap())
            .unwrap();
    // As the platform API names its callers: the access token's subject.
    let client_id = format!("{}@clients", client["client_id"].as_str().unwrap());
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    let before = context_chat::context_token::now_unix();

    // alex joins general by a token (on record as visit-1); sam by the platform's sync; the
    // platform revokes alex; kim is in random only.
    let alex = context_token(&server, "alex", "general").await;
    let issued = call(
        &server,
        "mutation($t: ID!) { issueChatToken(deviceId: \"d\", token: $t, xid: \"visit-1\") { xid } }",
        json!({"t": alex}),
        None,
        None,
    )
    .await;
    assert_eq!(
        issued.1["data"]["issueChatToken"]["xid"], "visit-1",
        "{issued:?}"
    );
    platform_json(
        &server,
        &dir,
        &["sync-identity", "--identity", "sam", "--context", "general"],
    );
    platform_json(&server, &dir, &["revoke-identity", "--identity", "alex"]);
    access_token(&server, &context_token(&server, "kim", "random").await).await;
    let after = context_chat::context_token::now_unix();

    let access = platform_json(&server, &dir, &["context-access", "--context", "general"]);
    let spans = access.as_array().unwrap();
    assert_eq!(spans.len(), 2, "{access:#}");
    let (alex, sam) = (&spans[0], &spans[1]);
    assert_eq!(alex["identity"], "alex");
    let within = |v: &Value| v.as_u64().is_some_and(|t| (before..=after).contains(&t));
    assert!(within(&alex["from"]) && within(&alex["to"]), "{alex}");
    assert_eq!(
        alex["cause"],
        json!({"kind": "token", "xid": "visit-1", "issuer": null, "keyId": kid, "client": null})
    );
    assert_eq!(
        alex["endedBy"],
        json!({"kind": "revoke", "xid": null, "issuer": null, "keyId": null, "client": client_id})
    );
    assert_eq!(sam["identity"], "sam");
    assert!(within(&sam["from"]) && sam["to"].is_null(), "{sam}");
    assert_eq!(sam["cause"]["kind"], "sync");
    assert_eq!(sam["cause"]["client"], client_id.as_str());
    assert!(sam["endedBy"].is_null());

    // A span before any of it lists no one; one after the revocation, sam only.
    let none = platform_json(
        &server,
        &dir,
        &[
            "context-access",
            "--context",
            "general",
            "--to",
            &(before - 10).to_string(),
        ],
    );
    assert_eq!(none, json!([]));
    let later = platform_json(
        &server,
        &dir,
        &[
            "context-access",
            "--context",
            "general",
            "--from",
            &(after + 1).to_string(),
            "--to",
            &(after + 100).to_string(),
        ],
    );
    assert_eq!(later.as_array().unwrap().len(), 1, "{later}");
    assert_eq!(later[0]["identity"], "sam");
    let random = platform_json(&server, &dir, &["context-access", "--context", "random"]);
    assert_eq!(random[0]["identity"], "kim");
    let backwards = platform_refusal(
        &server,
        &dir,
        &[
            "context-access",
            "--context",
            "general",
            "--from",
            "20",
            "--to",
            "10",
        ],
    );
    assert!(backwards.contains("BadRequest"), "{backwards}");
}

/// A context token with roles, from the development token API.
async fn token_with_roles(server: &Server, identity: &str, contexts: &str, roles: &str) -> String {
    let url = format!(
        "{}/token?identity={identity}&context={contexts}&roles={roles}",
        server.base
    );
    let response = reqwest::Client::new().post(url).send().await.unwrap();
    let body: Value = response.json().await.unwrap();
    body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

#[tokio::test]
async fn readers_read_moderators_clean_up_and_a_newer_token_changes_the_role() {
    let dir = temp_dir("local-roles");
    let server = serve(&dir, &[]);
    let kim_token = token_with_roles(&server, "kim", "announcements", "announcements:reader").await;
    let lee_token =
        token_with_roles(&server, "lee", "announcements", "announcements:moderator").await;
    // verifyToken answers the roles.
    let verified = call(
        &server,
        "query($t: ID!) { verifyToken(token: $t) { identity roles { context role } } }",
        json!({"t": kim_token}),
        None,
        None,
    )
    .await
    .1;
    assert_eq!(
        verified["data"]["verifyToken"]["roles"],
        json!([{"context": "announcements", "role": "reader"}])
    );
    // configure-twilio's roles are made when serve starts; a token before that is refused.
    let mut kim = None;
    for _ in 0..50 {
        let body = operation(
            &server,
            "createChatToken",
            json!({"deviceId": "d", "token": kim_token}),
        )
        .await;
        if let Some(token) = body["data"]["createChatToken"].as_str() {
            kim = Some(token.to_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kim = Client {
        server: &server,
        bearer: kim,
    };
    let lee = Client::of(&server, &lee_token).await;
    let mut kims_events = kim.events().await;

    // lee posts; kim reads it and may not post: Twilio's 50107, and nothing is added.
    assert_eq!(
        lee.says("announcements", "Trucks leave at 6.").await,
        StatusCode::CREATED
    );
    let (status, refused) = kim
        .post(
            "conversations/announcements/messages",
            json!({"body": "me too"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["code"], 50107);
    let (_, page) = kim.get("conversations/announcements/messages").await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 1, "{page}");

    // The platform makes kim a member: a newer token, and kim may post.
    let kim_member = token_with_roles(&server, "kim", "announcements", "").await;
    let kim = Client::of(&server, &kim_member).await;
    assert_eq!(
        kim.says("announcements", "Noted, thanks").await,
        StatusCode::CREATED
    );
    // kim may not delete lee's message; the moderator may delete kim's.
    let (status, refused) = kim
        .send(reqwest::Client::new().delete(kim.url("conversations/announcements/messages/0")))
        .await;
    assert_eq!(
        (status, &refused["code"]),
        (StatusCode::FORBIDDEN, &json!(50107))
    );
    let nobody = Client {
        server: &server,
        bearer: None,
    };
    let outsider = Client::of(&server, &context_token(&server, "sam", "general").await).await;
    for (who, expected) in [
        (&nobody, StatusCode::UNAUTHORIZED),
        (&outsider, StatusCode::FORBIDDEN),
    ] {
        let url = who.url("conversations/announcements/messages/1");
        assert_eq!(
            who.send(reqwest::Client::new().delete(url)).await.0,
            expected
        );
    }
    let (status, _) = lee
        .send(reqwest::Client::new().delete(lee.url("conversations/announcements/messages/1")))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let data = kims_events.until("messageRemoved").await;
    assert_eq!(data, json!({"context": "announcements", "index": 1}));
    let (_, page) = lee.get("conversations/announcements/messages").await;
    let left: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["Trucks leave at 6."]);
}

/// What a platform's receiver got: each request's headers and body, in order.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>;

/// A platform's event receiver on loopback: answers 500 to the first `refusals` attempts of
/// alex's first `membership.joined`, 200 to everything else.
async fn receiver(refusals: usize) -> (String, Received) {
    use axum::http::StatusCode as Status;
    let received: Received = Default::default();
    let seen = received.clone();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: String| async move {
                let mut all = seen.lock().unwrap();
                let event: Value = serde_json::from_str(&body).unwrap_or_default();
                let refused = event["type"] == "membership.joined"
                    && event["data"]["identity"] == "alex"
                    && all.iter().filter(|(_, b)| b == &body).count() < refusals;
                all.push((headers, body));
                match refused {
                    true => Status::INTERNAL_SERVER_ERROR,
                    false => Status::NO_CONTENT,
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// The Standard Webhooks example key (`whsec_` + base64 of 24 bytes).
const EVENTS_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test]
async fn the_platform_hears_of_joins_messages_notifications_and_revocations_signed_and_once() {
    use context_chat::events::signing::SigningKey;
    let dir = temp_dir("local-events");
    let (url, received) = receiver(3).await;
    let env = [
        ("CHAT_NOTIFY_WINDOW_SECS", "2".to_owned()),
        ("PLATFORM_EVENTS_URL", url),
        ("PLATFORM_EVENTS_SECRET", EVENTS_SECRET.to_owned()),
        ("PLATFORM_EVENTS_INCLUDE_BODY", "true".to_owned()),
    ];
    let server = serve(&dir, &env);
    // sam wants email about general (sam has no stream open: offline); alex joins by a token,
    // which the platform refuses three times; alex writes; the platform revokes alex.
    let sam_token = context_token(&server, "sam", "general").await;
    let _sam = Client::of(&server, &sam_token).await;
    subscribe_and_confirm(&server, &dir, &sam_token, "sam@example.org").await;
    let alex = Client::of(&server, &context_token(&server, "alex", "general").await).await;
    assert_eq!(alex.says("general", "The container is here").await, 201);
    eventually("sam's email", async || {
        outbox(&dir, "sam@example.org").len() == 2
    })
    .await;
    platform_json(&server, &dir, &["revoke-identity", "--identity", "alex"]);

    // Retries wait 1 s, 2 s and 4 s.
    let types = |received: &Received| -> Vec<String> {
        received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| {
                let e: Value = serde_json::from_str(b).unwrap();
                format!(
                    "{} {}",
                    e["type"].as_str().unwrap(),
                    e["data"]["identity"].as_str().unwrap()
                )
            })
            .collect()
    };
    for _ in 0..200 {
        if types(&received).len() >= 9 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing more comes: each event once (the refused one once more per refusal).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut got = types(&received);
    got.sort();
    assert_eq!(
        got,
        [
            "identity.revoked alex",
            "membership.joined alex",
            "membership.joined alex",
            "membership.joined alex",
            "membership.joined alex",
            "membership.joined sam",
            "membership.left alex",
            "message.added alex",
            "notification.sent sam",
        ],
        "{:#?}",
        received.lock().unwrap()
    );

    let key = SigningKey::parse(&secrecy::SecretString::from(EVENTS_SECRET.to_owned())).unwrap();
    let all = received.lock().unwrap().clone();
    let mut ids = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (headers, body) in &all {
        let header = |name: &str| headers[name].to_str().unwrap().to_owned();
        let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
        assert!(
            key.verify(
                &id,
                timestamp.parse().unwrap(),
                body,
                &header("webhook-signature")
            ),
            "{body}"
        );
        assert_eq!(header("content-type"), "application/json");
        ids.entry(id).or_default().push(body.clone());
        // Standard Webhooks' shape; never an address.
        let event: Value = serde_json::from_str(body).unwrap();
        assert!(
            event["timestamp"].as_str().unwrap().ends_with('Z'),
            "{event}"
        );
        assert!(!body.contains("@example.org"), "{body}");
    }
    // One id per event; the refused one kept its id and its bytes through four attempts.
    assert_eq!(ids.len(), 6, "{ids:#?}");
    let retried = ids
        .values()
        .find(|bodies| bodies.len() == 4)
        .expect("a retried event");
    assert!(retried.iter().all(|b| b == &retried[0]));

    let event = |kind: &str| -> Value {
        all.iter()
            .map(|(_, b)| serde_json::from_str::<Value>(b).unwrap())
            .find(|e| e["type"] == kind)
            .unwrap()
    };
    let message = event("message.added");
    assert_eq!(message["data"]["context"], "general");
    assert_eq!(message["data"]["index"], 0);
    assert_eq!(
        message["data"]["body"], "The container is here",
        "eventsIncludeBody"
    );
    assert_eq!(event("notification.sent")["data"]["channel"], "email");
    assert_eq!(event("membership.left")["data"]["cause"]["kind"], "revoke");
    assert_eq!(event("membership.joined")["data"]["cause"]["kind"], "token");
    assert_eq!(
        event("identity.revoked")["data"]["contexts"],
        json!(["general"])
    );

    // `chatctl events tail` shows what local mode emitted and what became of it.
    let out = crate::common::chatctl(&["events", "tail", "--data-dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let tail = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(tail.contains("queued message.added"), "{tail}");
    assert!(tail.contains("failed membership.joined"), "{tail}");
    assert!(tail.contains("HTTP 500"), "{tail}");
    assert_eq!(tail.matches("delivered ").count(), 6, "{tail}");
}

/// The kinds of the records an export lists, sorted.
fn kinds(export: &Value) -> Vec<String> {
    let mut kinds: Vec<String> = export["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// Whether any file of the embedded store (the database and its write-ahead log) holds `text`.
fn store_holds(dir: &std::path::Path, text: &str) -> bool {
    let base = context_chat::notifications::sqlite_store::FILE_NAME;
    [base.to_owned(), format!("{base}-wal")].iter().any(|name| {
        std::fs::read(dir.join(name))
            .is_ok_and(|bytes| bytes.windows(text.len()).any(|w| w == text.as_bytes()))
    })
}

#[tokio::test]
async fn export_holds_what_is_stored_and_erasure_leaves_only_hashed_audit_records() {
    let dir = temp_dir("local-erase");
    let server = serve(&dir, &[]);
    let alex_token = context_token(&server, "alex", "general,random").await;
    let issued = call(
        &server,
        "mutation($t: ID!) { issueChatToken(deviceId: \"d\", token: $t, xid: \"visit-9\") { token } }",
        json!({"t": alex_token}),
        None,
        None,
    )
    .await;
    let alex = Client {
        server: &server,
        bearer: Some(
            issued.1["data"]["issueChatToken"]["token"]
                .as_str()
                .unwrap()
                .to_owned(),
        ),
    };
    subscribe_and_confirm(&server, &dir, &alex_token, "alex@example.org").await;
    let sam = Client::of(&server, &context_token(&server, "sam", "general").await).await;
    assert_eq!(alex.says("general", "Mine, to be erased").await, 201);
    assert_eq!(sam.says("general", "Sam's stays").await, 201);

    // The export holds exactly what alex's use stored.
    let export = platform_json(&server, &dir, &["export-identity", "--identity", "alex"]);
    assert_eq!(export["identity"], "alex");
    assert_eq!(export["memberships"], json!(["general", "random"]));
    // Its rooms' access log, its address's confirmation and the tries of codes for it, the
    // digest waiting for it (sam wrote), its confirmation emails' log, both tokens in the
    // ledger (the development context token too) and the minute's minting counter, the
    // subscription.
    assert_eq!(
        kinds(&export),
        [
            "accessLog",
            "codeGuesses",
            "digest",
            "emailConfirmation",
            "emailSender",
            "ledger",
            "mintCounter",
            "subscription"
        ],
        "{export:#}"
    );
    let records = export["records"].as_array().unwrap();
    let of = |kind: &str| records.iter().filter(|r| r["kind"] == kind).count();
    assert_eq!(of("accessLog"), 2, "joined general and random");
    assert_eq!(
        of("ledger"),
        4,
        "two tokens, each under alex and by its xid"
    );
    let subscription = records
        .iter()
        .find(|r| r["kind"] == "subscription")
        .unwrap();
    assert_eq!(subscription["fields"]["email"], "alex@example.org");
    assert!(
        !kinds(&platform_json(
            &server,
            &dir,
            &["export-identity", "--identity", "sam"]
        ))
        .contains(&"subscription".to_owned())
    );
    assert!(store_holds(&dir, "alex@example.org"));

    // Only a platform client with chat:admin may erase; nobody without a platform token may
    // read the export (a context token is not one): refused, and nothing changed.
    let read_only = platform_refusal(
        &server,
        &dir,
        &[
            "--scope",
            "chat:read",
            "erase-identity",
            "--identity",
            "alex",
        ],
    );
    assert!(read_only.contains("AccessDenied"), "{read_only}");
    let export_query = "query($i: ID!) { exportIdentity(identity: $i) }";
    for bearer in [None, Some(alex_token.as_str())] {
        let (_, refused) = call(&server, export_query, json!({"i": "alex"}), bearer, None).await;
        assert_eq!(
            refused["errors"][0]["errorType"], "AccessDenied",
            "{refused}"
        );
        assert!(refused["data"].is_null(), "{refused}");
    }
    assert_eq!(
        platform_json(&server, &dir, &["export-identity", "--identity", "alex"]),
        export
    );

    // Erased, with the messages alex wrote (a second after the token was minted: a token of
    // the revocation's own second counts as newer).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let erased = platform_json(
        &server,
        &dir,
        &["erase-identity", "--identity", "alex", "--delete-messages"],
    );
    assert_eq!(erased["alreadyErased"], false, "{erased}");
    assert_eq!(erased["left"], json!(["general", "random"]));
    assert_eq!(erased["messagesDeleted"], 1);
    // The ledger's four, and the access log's two joins and two leaves.
    assert_eq!(erased["recordsPseudonymized"], 8, "{erased}");
    let pseudonym = erased["pseudonym"].as_str().unwrap().to_owned();
    assert!(pseudonym.starts_with("erased-"));

    let after = platform_json(&server, &dir, &["export-identity", "--identity", "alex"]);
    assert_eq!(after["memberships"], json!([]));
    assert_eq!(kinds(&after), ["revocation"], "{after:#}");
    assert!(
        !store_holds(&dir, "alex@example.org"),
        "no byte of the store (file or write-ahead log) holds the address"
    );
    // The audit records name the pseudonym.
    let hashed = platform_json(
        &server,
        &dir,
        &["export-identity", "--identity", &pseudonym],
    );
    assert_eq!(kinds(&hashed), ["accessLog", "ledger"], "{hashed:#}");
    let access = platform_json(&server, &dir, &["context-access", "--context", "general"]);
    let who: Vec<&str> = access
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["identity"].as_str().unwrap())
        .collect();
    assert!(
        who.contains(&pseudonym.as_str()) && !who.contains(&"alex"),
        "{access}"
    );
    // sam's message stays; alex's is gone.
    let (_, history) = sam.get("conversations/general/messages").await;
    let bodies: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["Sam's stays"], "{history}");
    // alex's token no longer opens a room.
    let refused = operation(
        &server,
        "createChatToken",
        json!({"deviceId": "d", "token": alex_token}),
    )
    .await;
    assert_eq!(
        refused["errors"][0]["errorType"], "AccessDenied",
        "{refused}"
    );

    // Again: nothing left, nothing changed.
    let again = platform_json(&server, &dir, &["erase-identity", "--identity", "alex"]);
    assert_eq!(again["alreadyErased"], true, "{again}");
    assert_eq!(again["pseudonym"], pseudonym.as_str());
    assert_eq!(
        platform_json(&server, &dir, &["export-identity", "--identity", "alex"]),
        after
    );
}

#[tokio::test]
async fn an_archived_room_is_exported_closed_and_opened_again_only_where_the_setting_says() {
    for reopen in [false, true] {
        let dir = temp_dir("local-archive");
        let env = [("PLATFORM_REOPEN_ARCHIVED", reopen.to_string())];
        let server = serve(&dir, &env);
        let alex = Client::of(&server, &context_token(&server, "alex", "depot").await).await;
        let sam = Client::of(
            &server,
            &context_token(&server, "sam", "depot,general").await,
        )
        .await;
        for (who, text) in [
            (&alex, "The truck is here"),
            (&sam, "Unloading"),
            (&alex, "Done ✅"),
        ] {
            assert_eq!(who.says("depot", text).await, 201);
        }
        let read_only = platform_refusal(
            &server,
            &dir,
            &[
                "--scope",
                "chat:read",
                "archive-context",
                "--context",
                "depot",
            ],
        );
        assert!(read_only.contains("AccessDenied"), "{read_only}");
        assert!(
            sam.conversation("depot").await.is_object(),
            "nothing closed"
        );
        let archived = platform_json(&server, &dir, &["archive-context", "--context", "depot"]);
        assert_eq!(archived["messages"], 3, "{archived}");
        assert_eq!(archived["participants"], json!(["alex", "sam"]));
        let bodies: Vec<&str> = archived["archive"]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].as_str().unwrap())
            .collect();
        assert_eq!(bodies, ["The truck is here", "Unloading", "Done ✅"]);
        assert_eq!(archived["archive"]["context"], "depot");
        // Closed: nobody is in it, and nothing more is said in it.
        assert!(sam.conversation("depot").await.is_null());
        assert!(sam.conversation("general").await.is_object());
        assert_ne!(alex.says("depot", "Anyone?").await, 201);
        let members = platform_refusal(&server, &dir, &["context-members", "--context", "depot"]);
        assert!(
            members.contains("EntityNotFound"),
            "the context's name is free: {members}"
        );

        // A later token naming it: Conflict, or a new, empty room.
        let kim = context_token(&server, "kim", "depot").await;
        let answer = operation(
            &server,
            "createChatToken",
            json!({"deviceId": "d", "token": kim}),
        )
        .await;
        if reopen {
            assert!(answer["data"]["createChatToken"].is_string(), "{answer}");
            let kim = Client::of(&server, &kim).await;
            let (_, history) = kim.get("conversations/depot/messages").await;
            assert_eq!(history["messages"], json!([]), "{history}");
        } else {
            assert_eq!(answer["errors"][0]["errorType"], "Conflict", "{answer}");
            assert!(
                answer["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("archived")
            );
        }
        let again = platform_refusal(&server, &dir, &["archive-context", "--context", "nowhere"]);
        assert!(
            again.contains("EntityNotFound") || again.contains("no open room"),
            "{again}"
        );
    }
}
