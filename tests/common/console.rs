//! A console client for tests without a browser: it logs in, keeps the session cookie by hand
//! (so tests can read its flags, and reuse or drop it), follows no redirects, and reads the
//! CSRF token out of a page.

use std::net::IpAddr;
use std::time::Duration;

/// What a console request answered.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub body: String,
    pub location: String,
    pub set_cookie: String,
    pub headers: reqwest::header::HeaderMap,
}

/// One browser's worth of console state: a base URL, a session cookie, a source address.
#[derive(Clone)]
pub struct Console {
    pub base: String,
    pub cookie: Option<String>,
    http: reqwest::Client,
}

impl Console {
    pub fn new(base: &str) -> Console {
        Console::from_address(base, None)
    }

    /// Requests go out from `from` (another loopback address, e.g. 127.0.0.2).
    pub fn from_address(base: &str, from: Option<IpAddr>) -> Console {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .danger_accept_invalid_certs(true)
            .local_address(from)
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Console {
            base: base.trim_end_matches('/').to_string(),
            cookie: None,
            http,
        }
    }

    async fn read(r: reqwest::Response) -> Page {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let (location, set_cookie) = (h("location"), h("set-cookie"));
        Page {
            status,
            body: r.text().await.expect("body"),
            location,
            set_cookie,
            headers,
        }
    }

    fn with_cookie(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(c) => rb.header("Cookie", format!("phoneprov_session={c}")),
            None => rb,
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        let rb = self.http.get(format!("{}{path}", self.base));
        Console::read(self.with_cookie(rb).send().await.expect("GET")).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let rb = self.http.post(format!("{}{path}", self.base)).form(form);
        Console::read(self.with_cookie(rb).send().await.expect("POST")).await
    }

    pub async fn post_with(&self, path: &str, form: &[(&str, &str)], header: (&str, &str)) -> Page {
        let rb = self
            .http
            .post(format!("{}{path}", self.base))
            .form(form)
            .header(header.0, header.1);
        Console::read(self.with_cookie(rb).send().await.expect("POST")).await
    }

    pub async fn post_multipart(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut f = reqwest::multipart::Form::new();
        for (k, v) in fields {
            f = f.text(k.to_string(), v.to_string());
        }
        let rb = self.http.post(format!("{}{path}", self.base)).multipart(f);
        Console::read(self.with_cookie(rb).send().await.expect("POST")).await
    }

    /// Logs in; on success keeps the session cookie. Returns the answer.
    pub async fn login(&mut self, user: &str, password: &str) -> Page {
        let p = self
            .post(
                "/ui/login",
                &[
                    ("user", user),
                    ("password", password),
                    ("next", "/ui/sites"),
                ],
            )
            .await;
        if let Some(v) = p
            .set_cookie
            .split(';')
            .next()
            .and_then(|c| c.strip_prefix("phoneprov_session="))
            .filter(|v| !v.is_empty())
        {
            self.cookie = Some(v.to_string());
        }
        p
    }

    /// Logs in and insists it works.
    pub async fn logged_in(base: &str, user: &str, password: &str) -> Console {
        let mut c = Console::new(base);
        let p = c.login(user, password).await;
        assert_eq!(p.status, 303, "login as {user}: {}", p.body);
        assert!(c.cookie.is_some(), "login as {user} set no cookie");
        c
    }

    /// The CSRF token of this session, read from a page's forms.
    pub async fn csrf(&self) -> String {
        let p = self.get("/ui/sites").await;
        assert_eq!(p.status, 200, "sites page: {}", p.body);
        csrf_in(&p.body).expect("a csrf field")
    }
}

/// The value of the first `name="csrf"` field in a page.
pub fn csrf_in(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")?;
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    Some(rest[..rest.find('"')?].to_string())
}
