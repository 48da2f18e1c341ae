//! A client connection's byte stream, plain TCP or TLS, as the two halves
//! the connection task reads and writes independently. Plain TCP keeps
//! tokio's lock-free owned halves; TLS uses `tokio::io::split`.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub(crate) type BoxedRead = Box<dyn AsyncRead + Unpin + Send>;
pub(crate) type BoxedWrite = Box<dyn AsyncWrite + Unpin + Send>;

pub(crate) struct ClientStream {
    pub reader: BoxedRead,
    pub writer: BoxedWrite,
    /// TLS (the secure client port).
    pub secure: bool,
}

impl ClientStream {
    pub fn plain(stream: TcpStream) -> Self {
        let (reader, writer) = stream.into_split();
        ClientStream {
            reader: Box::new(reader),
            writer: Box::new(writer),
            secure: false,
        }
    }

    pub fn tls<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(stream: S) -> Self {
        let (reader, writer) = tokio::io::split(stream);
        ClientStream {
            reader: Box::new(reader),
            writer: Box::new(writer),
            secure: true,
        }
    }
}
