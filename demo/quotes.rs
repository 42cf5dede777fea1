//! quotes: the demo HTTP service of swarmlab.
//!
//! `GET /api/quote` answers `{"ipAddress": "<hostname>/<ip>", "quote": "...",
//! "language": "EN"}` with a random quote; `GET /health` answers `ok`. One
//! log line per request; SIGTERM stops it gracefully (in-flight requests
//! finish).
//!
//! Only the standard library: `swarmlab image build-demo` compiles this one
//! file with rustc into a static binary for a `FROM scratch` image, offline
//! and in seconds. Every connection is answered and closed, so that a load
//! balancer spreads successive requests over the replicas.
//!
//! Usage: quotes [--port 8080] | quotes --health [--port 8080]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const QUOTES: &[&str] = &[
    "Rust lets you be fearless about concurrency, though not about the borrow checker.",
    "Go is what happens when simplicity is a feature and not an accident.",
    "C gives you enough rope to build a suspension bridge, or to hang yourself from it.",
    "Python reads like pseudocode that happens to run in production.",
    "Java proved that a virtual machine could outlive the hardware it was designed for.",
    "JavaScript: the only language that most people learn by accident.",
    "Haskell makes you a better programmer in every other language.",
    "Erlang was built for systems that are never allowed to stop, and it shows.",
    "C++ is three languages wearing one trench coat.",
    "Lisp programmers know the value of everything and the cost of parentheses.",
    "COBOL still moves more money each day than most languages ever will.",
    "Kotlin is Java after a long holiday and a good night's sleep.",
    "Swift made optional values a first-class citizen, and nil a second-class one.",
    "Shell scripts are the duct tape that holds the internet together.",
    "SQL is the most successful declarative language nobody calls a language.",
    "Elixir brought good manners to the Erlang virtual machine.",
    "OCaml: the type system catches the bug, the pattern match explains it.",
    "Fortran arrays start at one, and so does most of scientific computing.",
    "Ruby was designed to make programmers happy, and it mostly did.",
    "Zig asks you to handle every allocation failure, and means it.",
    "Scala gives you every paradigm at once, whether you asked or not.",
    "TypeScript is JavaScript that finally learned to read its own documentation.",
    "Perl: there is more than one way to do it, and you will find them all in one file.",
    "Prolog answers your question, then asks whether you would like another answer.",
    "Smalltalk taught the world that everything can be an object, even true and false.",
    "Ada was written for software that flies, and it does not crash lightly.",
    "Clojure makes immutability feel like the obvious default it always was.",
    "Assembly is honest: it never hides what the machine is doing.",
    "R turns statistics into one-liners and one-liners into statistics.",
    "Julia wants to be as easy as Python and as fast as Fortran, and often is.",
    "Dart was designed for user interfaces that redraw sixty times a second.",
    "PHP quietly serves a large part of the web while everyone argues about it.",
    "F# brings the calm of functional programming to the busy .NET world.",
    "Nim compiles to C, and to your surprise, also to JavaScript.",
    "Pascal was made to teach structured programming, and it still teaches well.",
    "Lua fits in a few hundred kilobytes and inside most game engines.",
];

/// Set by the signal handler; checked by the accept loop.
static STOP: AtomicBool = AtomicBool::new(false);

unsafe extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
}

extern "C" fn request_stop(_signal: i32) {
    STOP.store(true, Ordering::SeqCst);
}

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut port: u16 = 8080;
    let mut health = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or_else(|| usage()),
            "--health" => health = true,
            _ => usage(),
        }
    }
    if health {
        std::process::exit(if check_health(port) { 0 } else { 1 });
    }
    serve(port);
}

fn usage() -> ! {
    eprintln!("usage: quotes [--port PORT] [--health]");
    std::process::exit(2);
}

fn serve(port: u16) {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        signal(SIGTERM, request_stop);
        signal(SIGINT, request_stop);
    }
    let listener = TcpListener::bind(("0.0.0.0", port)).unwrap_or_else(|e| {
        eprintln!("quotes: cannot listen on port {port}: {e}");
        std::process::exit(1);
    });
    // Non-blocking accept, so that a stop request is seen within 50 ms.
    listener.set_nonblocking(true).expect("non-blocking listener");
    let identity = Arc::new(Identity::read());
    log(&format!("listening on :{port} as {}", identity.address()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut random = Random::seeded();
    while !STOP.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                let (identity, in_flight) = (identity.clone(), in_flight.clone());
                let seed = random.next();
                in_flight.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    handle(stream, peer, &identity, seed);
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => log(&format!("accept failed: {e}")),
        }
    }
    log("stopping: finishing requests in flight");
    let deadline = Instant::now() + Duration::from_secs(10);
    while in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    log("stopped");
}

fn handle(stream: TcpStream, peer: SocketAddr, identity: &Identity, seed: u64) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    // Skip the headers; no request of ours has a body worth reading.
    let mut header = String::new();
    while reader.read_line(&mut header).map(|n| n > 2).unwrap_or(false) {
        header.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, content_type, body) = respond(method, path, identity, seed);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
    log(&format!("{peer} {method} {path} {}", &status[..3]));
}

/// Routes a request: status line, content type, body.
fn respond(method: &str, path: &str, identity: &Identity, seed: u64) -> (&'static str, &'static str, String) {
    let path = path.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/api/quote") => {
            let quote = QUOTES[(seed % QUOTES.len() as u64) as usize];
            let body = format!(
                "{{\"ipAddress\":\"{}\",\"quote\":\"{}\",\"language\":\"EN\"}}\n",
                json_escape(&identity.address()),
                json_escape(quote)
            );
            ("200 OK", "application/json", body)
        }
        ("GET", "/health") => ("200 OK", "text/plain", "ok\n".to_string()),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "method not allowed\n".to_string(),
        ),
    }
}

/// The container's hostname and IP address.
struct Identity {
    hostname: String,
    ip: String,
}

impl Identity {
    fn read() -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        // Docker writes "<ip> <hostname>" into /etc/hosts of plain containers;
        // Swarm tasks get no such line, so fall back to the kernel's table of
        // local addresses. No DNS lookup either way.
        let ip = std::fs::read_to_string("/etc/hosts")
            .ok()
            .and_then(|hosts| ip_from_hosts(&hosts, &hostname))
            .or_else(|| {
                std::fs::read_to_string("/proc/net/fib_trie")
                    .ok()
                    .and_then(|trie| ip_from_fib_trie(&trie))
            })
            .unwrap_or_default();
        Identity { hostname, ip }
    }

    fn address(&self) -> String {
        format!("{}/{}", self.hostname, self.ip)
    }
}

fn ip_from_hosts(hosts: &str, hostname: &str) -> Option<String> {
    hosts
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            let ip = fields.next()?;
            let names: Vec<&str> = fields.collect();
            (names.contains(&hostname) && !ip.starts_with("127.") && ip != "::1").then(|| ip.to_string())
        })
}

/// The first local, non-loopback IPv4 address in /proc/net/fib_trie: an
/// address line followed by "/32 host LOCAL".
fn ip_from_fib_trie(trie: &str) -> Option<String> {
    let mut previous = "";
    for line in trie.lines() {
        let line = line.trim();
        if line.starts_with("/32 host LOCAL") {
            let ip = previous.trim_start_matches(|c: char| !c.is_ascii_digit());
            if !ip.starts_with("127.") && !ip.is_empty() {
                return Some(ip.to_string());
            }
        }
        previous = line;
    }
    None
}

fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn check_health(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(2))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /health HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

fn log(message: &str) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    println!("{}.{:03} {message}", now.as_secs(), now.subsec_millis());
}

/// xorshift64*: enough randomness to pick a quote.
struct Random(u64);

impl Random {
    fn seeded() -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Random((now.as_nanos() as u64) ^ ((std::process::id() as u64) << 32) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            hostname: "fc9193f817ef".into(),
            ip: "10.0.0.7".into(),
        }
    }

    #[test]
    fn quote_answers_json_with_the_address() {
        let (status, content_type, body) = respond("GET", "/api/quote", &identity(), 3);
        assert_eq!(status, "200 OK");
        assert_eq!(content_type, "application/json");
        assert!(
            body.starts_with("{\"ipAddress\":\"fc9193f817ef/10.0.0.7\",\"quote\":\""),
            "{body}"
        );
        assert!(body.trim_end().ends_with("\"language\":\"EN\"}"), "{body}");
    }

    #[test]
    fn other_routes() {
        assert_eq!(respond("GET", "/health", &identity(), 0).0, "200 OK");
        assert_eq!(respond("GET", "/nope", &identity(), 0).0, "404 Not Found");
        assert_eq!(
            respond("POST", "/api/quote", &identity(), 0).0,
            "405 Method Not Allowed"
        );
        assert_eq!(respond("GET", "/api/quote?x=1", &identity(), 0).0, "200 OK");
    }

    #[test]
    fn ip_comes_from_etc_hosts() {
        let hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n10.0.0.7\tfc9193f817ef\n";
        assert_eq!(ip_from_hosts(hosts, "fc9193f817ef").as_deref(), Some("10.0.0.7"));
        assert_eq!(ip_from_hosts(hosts, "other"), None);
    }

    #[test]
    fn ip_comes_from_the_fib_trie_for_swarm_tasks() {
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     +-- 10.0.0.0/24 2 0 2\n        |-- 10.0.0.7\n           /32 host LOCAL\n     +-- 127.0.0.0/8 2 0 2\n        |-- 127.0.0.1\n           /32 host LOCAL\n";
        assert_eq!(ip_from_fib_trie(trie).as_deref(), Some("10.0.0.7"));
        assert_eq!(ip_from_fib_trie("Main:\n"), None);
    }

    #[test]
    fn quotes_are_many_and_distinct() {
        assert!(QUOTES.len() >= 30);
        let distinct: std::collections::HashSet<_> = QUOTES.iter().collect();
        assert_eq!(distinct.len(), QUOTES.len());
        let mut random = Random::seeded();
        let picked: std::collections::HashSet<u64> = (0..200).map(|_| random.next() % QUOTES.len() as u64).collect();
        assert!(picked.len() > 20);
    }

    #[test]
    fn escaping() {
        assert_eq!(json_escape("a\"b\\c\n"), "a\\\"b\\\\c\\u000a");
    }
}
