//! tokio's echo server, written the usual way: a current-thread runtime, one task per
//! connection, each looping `read` then `write_all` with a buffer of its own.

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;

use ::tokio::io::{AsyncReadExt, AsyncWriteExt};
use ::tokio::net::{TcpListener, TcpStream};
use ::tokio::runtime::Builder;

use crate::cpu::CpuTimes;

use super::{loopback_any_port, Meter};

/// Each connection task's buffer (tokio's own echo example uses 1 KiB; 4 KiB holds every
/// burst this benchmark sends in one read).
pub const TASK_BUFFER_SIZE: usize = 4096;

/// Serves until the meter is told to stop; returns the measured phase's CPU time.
pub fn serve(mut meter: Meter, addr_tx: mpsc::Sender<SocketAddr>) -> io::Result<CpuTimes> {
    let runtime = Builder::new_current_thread().enable_io().build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(loopback_any_port()).await?;
        let _ = addr_tx.send(listener.local_addr()?);
        let control = meter.control_arc();
        let acceptor = ::tokio::spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _peer)) => stream,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                    Err(_) => return,
                };
                control.count_accept();
                ::tokio::spawn(echo(stream));
            }
        });
        let result = loop {
            match meter.check() {
                Ok(Some(used)) => break Ok(used),
                Ok(None) => meter.changed().await,
                Err(e) => break Err(e),
            }
        };
        acceptor.abort();
        result
    })
}

/// One connection's task: read, write it all back, until EOF or an error.
async fn echo(mut stream: TcpStream) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let mut buf = vec![0u8; TASK_BUFFER_SIZE];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
