//! Loopback peer RAIDAs: a listener thread that hands each connection to a script
//! ([`FakePeer`]), an honest peer ([`HonestPeer`]), and the peers that never serve: a
//! port that refuses ([`down_port`]), a full accept queue where a connect hangs
//! ([`black_hole`]), a listener that only tells whether a request reached it
//! ([`Untouchable`]), and silent peers that count what reached them and can come back
//! ([`SilentPeer`]).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use raida_healing::protocol::Coin;

use crate::request::{is_validate_ticket, read_request};
use crate::wire::{listing, reply};

/// A listener on 127.0.0.1 whose accept thread hands every connection to `serve`, until
/// dropped. `serve` runs on the accept thread (connections are served one at a time);
/// a script that serves connections side by side spawns its own thread per connection.
pub struct FakePeer {
    pub addr: SocketAddrV4,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakePeer {
    pub fn spawn(mut serve: impl FnMut(TcpStream) + Send + 'static) -> FakePeer {
        let (listener, addr) = listen();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        serve(stream);
                    }
                }
            })
        };
        FakePeer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which sees `stop` and leaves. Threads a script spawned
        // end on their own (the client closes, or their read timeout).
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A listener on an ephemeral loopback port.
pub fn listen() -> (TcpListener, SocketAddrV4) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = match listener.local_addr().unwrap() {
        SocketAddr::V4(a) => a,
        other => panic!("not IPv4: {other}"),
    };
    (listener, addr)
}

/// An unbound-elsewhere loopback socket with its address.
fn loopback_socket() -> (socket2::Socket, SocketAddrV4) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let addr = socket.local_addr().unwrap().as_socket_ipv4().unwrap();
    (socket, addr)
}

/// A port that refuses connections: bound (so no one else gets it) but not listening.
pub fn down_port() -> (socket2::Socket, SocketAddrV4) {
    loopback_socket()
}

/// A listener whose accept queue is full and never drained: a connect to it hangs in
/// SYN-SENT, like a peer behind a firewall that drops packets. Keep all three alive.
pub fn black_hole() -> (socket2::Socket, TcpStream, SocketAddrV4) {
    let (socket, addr) = loopback_socket();
    socket.listen(0).unwrap();
    let filler = TcpStream::connect(addr).unwrap();
    (socket, filler, addr)
}

/// A listener nobody serves: a fix must never connect to it.
pub struct Untouchable {
    listener: TcpListener,
    pub addr: SocketAddrV4,
}

impl Untouchable {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Untouchable {
        let (listener, addr) = listen();
        listener.set_nonblocking(true).unwrap();
        Untouchable { listener, addr }
    }

    /// True when a validate-ticket request reached it. A fix that has returned made
    /// every connect it started (loopback connects complete inside the call) and sent
    /// its request right after; stray connections from elsewhere are not counted.
    pub fn was_contacted(&self) -> bool {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    let mut head = [0u8; 6];
                    if stream.read_exact(&mut head).is_ok() && is_validate_ticket(&head) {
                        return true;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) => panic!("accept: {e}"),
            }
        }
    }
}

/// Reads a validate-ticket request (55 bytes) from `stream` and answers 250 listing
/// `coins` for RAIDA `raida`, echoing its challenge. False when no whole request came.
pub fn answer_honestly(stream: &mut TcpStream, raida: u8, coins: &[Coin]) -> bool {
    let Some(request) = read_request(stream, Duration::from_secs(10)) else {
        return false;
    };
    let answer = reply(raida, 250, &request[32..48], &listing(coins));
    stream.write_all(&answer).is_ok()
}

/// An honest peer RAIDA `raida` that answers every request 250 listing `coins`, one
/// connection at a time on its accept thread; counts the requests it answered.
pub struct HonestPeer {
    pub peer: FakePeer,
    pub answered: Arc<AtomicUsize>,
}

impl HonestPeer {
    pub fn spawn(raida: u8, coins: Vec<Coin>) -> HonestPeer {
        let answered = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&answered);
        let peer = FakePeer::spawn(move |mut stream| {
            if answer_honestly(&mut stream, raida, &coins) {
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        HonestPeer { peer, answered }
    }
}

/// How a silent peer is silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// "Never" is what every variant says: the names read as sentences (Silence::NeverAnswers).
#[allow(clippy::enum_variant_names)]
pub enum Silence {
    /// Its accept queue is full: a connect hangs in SYN-SENT (as [`black_hole`]).
    NeverConnects,
    /// The kernel completes the handshake into its accept queue; the peer never accepts.
    NeverAccepts,
    /// It accepts and never answers.
    NeverAnswers,
}

/// Who a revived peer answers as, and what it lists.
type Answer = Arc<Mutex<Option<(u8, Vec<Coin>)>>>;

/// A peer that stays silent until [`SilentPeer::revive`] makes it answer honestly, and
/// counts the connections that reached it.
pub struct SilentPeer {
    pub addr: SocketAddrV4,
    pub silence: Silence,
    listener: Arc<socket2::Socket>,
    _filler: Option<TcpStream>,
    reached: Arc<AtomicUsize>,
    answer: Answer,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentPeer {
    pub fn new(silence: Silence) -> SilentPeer {
        let (socket, addr) = loopback_socket();
        let filler = if silence == Silence::NeverConnects {
            socket.listen(0).unwrap();
            Some(TcpStream::connect(addr).unwrap())
        } else {
            socket.listen(128).unwrap();
            None
        };
        let mut peer = SilentPeer {
            addr,
            silence,
            listener: Arc::new(socket),
            _filler: filler,
            reached: Arc::new(AtomicUsize::new(0)),
            answer: Arc::new(Mutex::new(None)),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        if silence == Silence::NeverAnswers {
            peer.start_accepting();
        }
        peer
    }

    /// Connections that reached it while silent: accepted ([`Silence::NeverAnswers`]) or
    /// waiting in its accept queue ([`Silence::NeverAccepts`]: taken out and counted);
    /// `None` for [`Silence::NeverConnects`], whose connects never complete. Call it
    /// after the calls that connected have returned (loopback connects complete inside
    /// the call).
    pub fn connections(&self) -> Option<usize> {
        match self.silence {
            Silence::NeverConnects => None,
            Silence::NeverAnswers => Some(self.reached.load(Ordering::SeqCst)),
            Silence::NeverAccepts => {
                if self.thread.is_none() {
                    self.listener.set_nonblocking(true).unwrap();
                    while let Ok((stream, _)) = self.listener.accept() {
                        self.reached.fetch_add(1, Ordering::SeqCst);
                        drop(stream);
                    }
                    self.listener.set_nonblocking(false).unwrap();
                }
                Some(self.reached.load(Ordering::SeqCst))
            }
        }
    }

    /// From now on every new connection is answered 250 listing `coins` as RAIDA `raida`
    /// (a connection held silent so far stays silent).
    pub fn revive(&mut self, raida: u8, coins: Vec<Coin>) {
        // What waited in the queue so far is counted before it starts serving.
        let _ = self.connections();
        *self.answer.lock().unwrap() = Some((raida, coins));
        if self.thread.is_none() {
            self.start_accepting();
        }
    }

    fn start_accepting(&mut self) {
        let (listener, stop) = (Arc::clone(&self.listener), Arc::clone(&self.stop));
        let (reached, answer) = (Arc::clone(&self.reached), Arc::clone(&self.answer));
        self.thread = Some(std::thread::spawn(move || {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let mut stream: TcpStream = stream.into();
                let honest = answer.lock().unwrap().clone();
                match honest {
                    // One thread per connection: the black hole's filler never sends.
                    Some((raida, coins)) => {
                        std::thread::spawn(move || answer_honestly(&mut stream, raida, &coins));
                    }
                    None => {
                        reached.fetch_add(1, Ordering::SeqCst);
                        held.push(stream);
                    }
                }
            }
        }));
    }
}

impl Drop for SilentPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = TcpStream::connect(self.addr);
            let _ = thread.join();
        }
    }
}
