//! Browser-test harness: a headless Chromium driven through chromedriver
//! (WebDriver, via fantoccini), with bounded waits and screenshots.
//!
//! Needs Debian's `chromium` and `chromium-driver` packages
//! (`/usr/bin/chromium`, `/usr/bin/chromedriver`); `GATEHOUSE_CHROMIUM` and
//! `GATEHOUSE_CHROMEDRIVER` point elsewhere. A missing browser fails the
//! test, never skips it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    future::Future,
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{
    elements::Element, error::CmdError, wd::WindowHandle, Client, ClientBuilder, Locator,
};
use serde_json::{json, Value};
use tokio::sync::{Semaphore, SemaphorePermit};

/// How long a wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

/// The desktop window, and an iPhone-sized one.
pub const DESKTOP: (u32, u32) = (1280, 900);
pub const PHONE: (u32, u32) = (390, 844);

/// Browsers running at once in one test binary: each is a few hundred MB.
static BROWSERS: Semaphore = Semaphore::const_new(3);

const INSTALL_HINT: &str = "browser tests need Chromium and chromedriver: install Debian's \
    `chromium` and `chromium-driver` packages (apt-get install chromium chromium-driver), \
    or set GATEHOUSE_CHROMIUM / GATEHOUSE_CHROMEDRIVER";

/// A headless Chromium session. Dropping it ends the session and kills
/// chromedriver.
pub struct Browser {
    pub client: Client,
    driver: Child,
    port: u16,
    session_id: Option<String>,
    profile: tempfile::TempDir,
    _permit: SemaphorePermit<'static>,
}

fn executable(env: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "{} not found; {INSTALL_HINT}",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port()
}

impl Browser {
    /// Starts chromedriver on a free port and opens a session at desktop size.
    pub async fn start() -> Self {
        let chromium = executable("GATEHOUSE_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = executable("GATEHOUSE_CHROMEDRIVER", "/usr/bin/chromedriver");
        let permit = BROWSERS.acquire().await.expect("semaphore open");
        let profile = tempfile::tempdir().expect("a profile dir");
        let log = std::fs::File::create(profile.path().join("chromedriver.log")).unwrap();
        let port = free_port();
        let mut driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {}: {e}; {INSTALL_HINT}", chromedriver.display())
            });

        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr, POLL).is_err() {
            if let Ok(Some(status)) = driver.try_wait() {
                panic!(
                    "chromedriver exited ({status}): {}",
                    read_log(profile.path())
                );
            }
            if started.elapsed() > WAIT {
                let _ = driver.kill();
                panic!(
                    "chromedriver did not listen on {addr} within {WAIT:?}: {}",
                    read_log(profile.path())
                );
            }
            tokio::time::sleep(POLL).await;
        }

        let user_data = profile.path().join("profile");
        // The test OpenID provider's pages import web fonts: without a
        // network, resolving their host would stall each page for seconds.
        let offline = "MAP fonts.googleapis.com ~NOTFOUND, MAP fonts.gstatic.com ~NOTFOUND";
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    "--disable-extensions",
                    format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
                    format!("--user-data-dir={}", user_data.display()),
                    format!("--host-resolver-rules={offline}"),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = match ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://{addr}"))
            .await
        {
            Ok(client) => client,
            Err(e) => {
                let _ = driver.kill();
                panic!(
                    "chromedriver could not start {}: {e}; {INSTALL_HINT}\n{}",
                    chromium.display(),
                    read_log(profile.path())
                );
            }
        };
        let session_id = client.session_id().await.ok().flatten();
        let browser = Self {
            client,
            driver,
            port,
            session_id,
            profile,
            _permit: permit,
        };
        browser.set_size(DESKTOP).await;
        browser
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    pub async fn current_url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// The element `css` selects, now.
    pub async fn find(&self, css: &str) -> Element {
        match self.client.find(Locator::Css(css)).await {
            Ok(el) => el,
            Err(e) => panic!("no {css}: {e}\npage: {}", self.body_text().await),
        }
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client.find_all(Locator::Css(css)).await.unwrap()
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self.find_all(css).await.is_empty()
    }

    /// Polls `ready` until it holds, failing the test after [`WAIT`].
    pub async fn wait_until<F, Fut>(&self, what: &str, mut ready: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let started = Instant::now();
        while !ready().await {
            if started.elapsed() > WAIT {
                panic!(
                    "timed out after {WAIT:?} waiting for {what}\nurl: {}\npage: {}",
                    self.current_url().await,
                    self.body_text().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `css` selects an element, and returns it.
    pub async fn wait_for(&self, css: &str) -> Element {
        self.wait_until(css, || self.exists(css)).await;
        self.find(css).await
    }

    /// Waits until the element `css` selects has `text` in its text.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> Element {
        self.wait_until(&format!("{css} to contain {text:?}"), || async {
            match self.client.find(Locator::Css(css)).await {
                Ok(el) => el.text().await.is_ok_and(|t| t.contains(text)),
                Err(_) => false,
            }
        })
        .await;
        self.find(css).await
    }

    /// Runs `op` on the element `css` selects; again on a fresh element if
    /// the page re-rendered it in between (a stale element reference).
    pub async fn on_element<T, F, Fut>(&self, css: &str, mut op: F) -> T
    where
        F: FnMut(Element) -> Fut,
        Fut: Future<Output = Result<T, CmdError>>,
    {
        let started = Instant::now();
        loop {
            match op(self.find(css).await).await {
                Ok(value) => return value,
                Err(e) if e.is_stale_element_reference() && started.elapsed() < WAIT => {
                    tokio::time::sleep(POLL).await;
                }
                Err(e) => panic!("{css}: {e}\npage: {}", self.body_text().await),
            }
        }
    }

    /// The visible text of `css`.
    pub async fn text(&self, css: &str) -> String {
        self.on_element(css, |el| async move { el.text().await })
            .await
    }

    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.on_element(css, |el| async move { el.attr(name).await })
            .await
    }

    /// Types `value` into the input `css`, replacing what was there.
    pub async fn fill(&self, css: &str, value: &str) {
        self.on_element(css, |el| async move {
            el.clear().await?;
            el.send_keys(value).await
        })
        .await;
    }

    pub async fn click(&self, css: &str) {
        self.on_element(css, |el| async move { el.click().await })
            .await;
    }

    /// The page's text, for failure messages.
    pub async fn body_text(&self) -> String {
        match self
            .client
            .execute(
                "return document.body ? document.body.innerText : ''",
                vec![],
            )
            .await
        {
            Ok(Value::String(s)) => s.chars().take(2000).collect(),
            Ok(other) => other.to_string(),
            Err(e) => format!("(unreadable: {e})"),
        }
    }

    /// The window the session drives now.
    pub async fn window(&self) -> WindowHandle {
        self.client.window().await.unwrap()
    }

    /// Every open window (tabs and popups).
    pub async fn windows(&self) -> Vec<WindowHandle> {
        self.client.windows().await.unwrap()
    }

    /// Drives `window` from now on.
    pub async fn switch_to(&self, window: &WindowHandle) {
        self.client
            .switch_to_window(window.clone())
            .await
            .unwrap_or_else(|e| panic!("switch to {window:?}: {e}"));
    }

    /// Waits until a window other than `known` opens (a popup), and drives
    /// it from now on.
    pub async fn switch_to_new_window(&self, known: &[WindowHandle]) -> WindowHandle {
        let started = Instant::now();
        loop {
            let new = self
                .windows()
                .await
                .into_iter()
                .find(|w| !known.contains(w));
            if let Some(window) = new {
                self.switch_to(&window).await;
                return window;
            }
            if started.elapsed() > WAIT {
                panic!(
                    "no new window opened within {WAIT:?}
page: {}",
                    self.body_text().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `window` has closed (a popup closing itself), then
    /// drives `back`.
    pub async fn wait_for_window_closed(&self, window: &WindowHandle, back: &WindowHandle) {
        let started = Instant::now();
        while self.windows().await.contains(window) {
            if started.elapsed() > WAIT {
                let url = self.current_url().await;
                panic!(
                    "the window did not close within {WAIT:?}
url: {url}
page: {}",
                    self.body_text().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
        self.switch_to(back).await;
    }

    /// Resizes the window so that its viewport is `width` × `height` CSS
    /// pixels (the window is a little larger than its viewport).
    pub async fn set_size(&self, (width, height): (u32, u32)) {
        self.client.set_window_size(width, height).await.unwrap();
        let inner = self
            .client
            .execute("return [window.innerWidth, window.innerHeight]", vec![])
            .await
            .unwrap();
        let (w, h) = (
            inner[0].as_u64().unwrap() as u32,
            inner[1].as_u64().unwrap() as u32,
        );
        if (w, h) != (width, height) {
            self.client
                .set_window_size(
                    width + width.saturating_sub(w),
                    height + height.saturating_sub(h),
                )
                .await
                .unwrap();
        }
    }

    /// Saves a PNG of the viewport to `path`, creating its directory.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Saves a PNG of the whole page at `width`, then restores the window.
    pub async fn screenshot_full_page(&self, path: &Path, width: u32, restore: (u32, u32)) {
        self.set_size((width, restore.1)).await;
        let height = self
            .client
            .execute("return document.documentElement.scrollHeight", vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap() as u32;
        self.set_size((width, height.max(restore.1))).await;
        self.screenshot(path).await;
        self.set_size(restore).await;
    }

    /// Ends the session cleanly (Drop also does, best effort).
    pub async fn close(mut self) {
        let client = self.client.clone();
        if client.close().await.is_ok() {
            self.session_id = None;
        }
    }
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("chromedriver.log")).unwrap_or_default()
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Drop cannot await: end the WebDriver session (which quits
        // Chromium) with a plain blocking request, then stop chromedriver.
        if let Some(id) = self.session_id.take() {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
            if let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let request = format!(
                    "DELETE /session/{id} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                if stream.write_all(request.as_bytes()).is_ok() {
                    let mut sink = Vec::new();
                    let _ = stream.read_to_end(&mut sink);
                }
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
