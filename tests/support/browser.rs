//! A real browser for tests: Debian's headless Chromium, driven through ChromeDriver's W3C
//! WebDriver API (plain HTTP and JSON, so no client crate). Start one with
//! [`Browser::start`], then [`Browser::goto`] a URL, [`Browser::eval`] JavaScript to read the
//! DOM, [`Browser::wait_for`] a condition, and [`Browser::screenshot`] into `target/`.
//!
//! Chromium and ChromeDriver come from `scripts/install-chromium` (apt-get); [`Browser::start`]
//! fails with that hint when they are missing. Each browser gets a fresh profile directory
//! and runs with networking beyond the page's own requests turned off.
//!
//! Blocking, on purpose: it is usable from plain and async tests alike (the servers under test
//! run on threads of their own), and each call is one short request to ChromeDriver.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// One browser window (a WebDriver session) and the ChromeDriver process that runs it.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

fn find(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

impl Browser {
    /// Starts Chromium headless with a desktop window of `width` x `height` pixels.
    pub fn start(width: u32, height: u32) -> Result<Browser, String> {
        Self::launch(width, height, None)
    }

    /// Starts Chromium headless emulating a phone: a viewport of `width` x `height` CSS
    /// pixels (headless windows are never narrower than 500), touch, a mobile user agent.
    pub fn phone(width: u32, height: u32) -> Result<Browser, String> {
        let metrics = json!({"deviceMetrics": {"width": width, "height": height, "pixelRatio": 2.0, "touch": true}});
        Self::launch(width.max(500), height, Some(metrics))
    }

    fn launch(width: u32, height: u32, mobile: Option<Value>) -> Result<Browser, String> {
        let hint = "run scripts/install-chromium (Debian's chromium and chromium-driver)";
        let chromium = find("chromium").ok_or(format!("no chromium on PATH; {hint}"))?;
        let chromedriver =
            find("chromedriver").ok_or(format!("no chromedriver on PATH; {hint}"))?;
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            l.local_addr().map_err(|e| e.to_string())?.port()
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", chromedriver.display()))?;
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match browser.request("GET", "/status", None) {
                Ok(v) if v["value"]["ready"] == json!(true) => break,
                _ if Instant::now() > deadline => {
                    return Err("chromedriver did not become ready within 20 s".into())
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let mut options = json!({"binary": chromium, "args": args});
        if let Some(m) = mobile {
            options["mobileEmulation"] = m;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
        }}});
        let v = browser.request("POST", "/session", Some(caps))?;
        browser.session = v["value"]["sessionId"]
            .as_str()
            .ok_or(format!("no session in ChromeDriver's answer: {v}"))?
            .to_string();
        Ok(browser)
    }

    pub fn goto(&self, url: &str) -> Result<(), String> {
        self.command("POST", "url", json!({ "url": url })).map(drop)
    }

    /// Runs `script` (a function body: `return …;`) in the page and returns its result.
    pub fn eval(&self, script: &str) -> Result<Value, String> {
        self.command(
            "POST",
            "execute/sync",
            json!({"script": script, "args": []}),
        )
    }

    /// Evaluates `script` every 100 ms until it returns something other than `null`, `false`
    /// or `undefined`, and returns that; fails after `timeout`, saying what it last got.
    pub fn wait_for(&self, script: &str, timeout: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(script)?;
            if !(v.is_null() || v == json!(false)) {
                return Ok(v);
            }
            if Instant::now() > deadline {
                return Err(format!("not true within {timeout:?}: {script} (last: {v})"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG of the viewport as `target/screenshots/NAME.png`, and returns its path.
    pub fn screenshot(&self, name: &str) -> Result<PathBuf, String> {
        use base64::Engine as _;
        let v = self.command("GET", "screenshot", Value::Null)?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().ok_or("no screenshot data")?)
            .map_err(|e| e.to_string())?;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).map_err(|e| e.to_string())?;
        Ok(path)
    }

    fn command(&self, method: &str, what: &str, body: Value) -> Result<Value, String> {
        let path = format!("/session/{}/{what}", self.session);
        let body = (method == "POST").then_some(body);
        self.request(method, &path, body)
            .map(|v| v["value"].clone())
    }

    /// One WebDriver request on a connection of its own. The answer's length is taken from
    /// `Content-Length`: ChromeDriver keeps the connection open after answering.
    fn request(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
            .map_err(|e| format!("chromedriver: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        s.write_all(head.as_bytes())
            .and_then(|_| s.write_all(body.as_bytes()))
            .map_err(|e| format!("chromedriver: {e}"))?;
        let mut r = BufReader::new(s);
        let mut status = String::new();
        r.read_line(&mut status).map_err(|e| e.to_string())?;
        let mut length = None;
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 || line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse::<usize>().ok();
                }
            }
        }
        let mut raw = Vec::new();
        match length {
            Some(n) => {
                raw.resize(n, 0);
                r.read_exact(&mut raw).map_err(|e| e.to_string())?;
            }
            None => {
                r.read_to_end(&mut raw).map_err(|e| e.to_string())?;
            }
        }
        let text = String::from_utf8_lossy(&raw);
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| format!("chromedriver answered {status:?} with {text:?}: {e}"))?;
        if !status.contains(" 200 ") {
            return Err(format!("{method} {path}: {} {v}", status.trim()));
        }
        Ok(v)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.request("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
