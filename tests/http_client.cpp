#include "http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>
#include <chrono>
#include <fstream>
#include <sstream>

namespace upres::test {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

http::request<http::string_body> make_request(int port, const std::string& method, const std::string& target,
                                              const std::string& body,
                                              const std::vector<std::string>& headers) {
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  for (const std::string& h : headers) {
    size_t colon = h.find(':');
    req.set(h.substr(0, colon), h.substr(colon + 2));
  }
  req.body() = body;
  if (!body.empty() || method == "POST" || method == "PUT") req.prepare_payload();
  return req;
}

tcp::socket connect(net::io_context& io, int port) {
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  return socket;
}

}  // namespace

HttpReply http_request(int port, const std::string& method, const std::string& target,
                       const std::string& body, const std::vector<std::string>& headers) {
  net::io_context io;
  tcp::socket socket = connect(io, port);
  auto req = make_request(port, method, target, body, headers);
  beast::error_code ec;
  http::write(socket, req, ec);  // the server may answer (413, 429) before taking the whole body
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(uint64_t(1) << 31);
  http::read(socket, buffer, parser, ec);
  if (ec && ec != http::error::end_of_stream) throw std::runtime_error("HTTP read failed: " + ec.message());
  HttpReply reply;
  const auto& res = parser.get();
  reply.status = res.result_int();
  for (const auto& field : res) {
    std::string name(field.name_string());
    for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
    reply.headers[name] = std::string(field.value());
  }
  reply.body = res.body();
  return reply;
}

std::vector<ServerSentEvent> read_event_stream(int port, const std::string& target, int* status) {
  auto start = std::chrono::steady_clock::now();
  net::io_context io;
  tcp::socket socket = connect(io, port);
  auto req = make_request(port, "GET", target, "", {"Accept: text/event-stream"});
  http::write(socket, req);
  beast::flat_buffer buffer;
  http::response_parser<http::empty_body> header;
  http::read_header(socket, buffer, header);
  if (status) *status = header.get().result_int();
  // The rest is the stream: read it as it comes, stamping each event with its arrival.
  std::string pending(static_cast<const char*>(buffer.data().data()), buffer.size());
  std::vector<ServerSentEvent> events;
  ServerSentEvent current;
  char chunk[4096];
  for (;;) {
    size_t end;
    while ((end = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, end);
      pending.erase(0, end + 1);
      if (line.empty()) {
        if (!current.name.empty() || !current.data.empty()) {
          current.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          events.push_back(current);
        }
        current = {};
      } else if (line.rfind("event: ", 0) == 0) {
        current.name = line.substr(7);
      } else if (line.rfind("data: ", 0) == 0) {
        current.data += line.substr(6);
      } else if (line.rfind("id: ", 0) == 0) {
        current.id = line.substr(4);
      }
    }
    beast::error_code ec;
    size_t n = socket.read_some(net::buffer(chunk), ec);
    if (ec) break;
    pending.append(chunk, n);
  }
  return events;
}

void Multipart::field(const std::string& name, const std::string& value) {
  body +=
      "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n";
}

void Multipart::file(const std::string& name, const std::string& filename, const std::string& type,
                     const std::string& data) {
  body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"; filename=\"" +
          filename + "\"\r\nContent-Type: " + type + "\r\n\r\n" + data + "\r\n";
}

std::string read_file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

RawConnection::RawConnection(int port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(uint16_t(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
    throw std::runtime_error("cannot connect to 127.0.0.1");
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::send(const std::string& bytes) {
  return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == ssize_t(bytes.size());
}

bool RawConnection::closed_within(double seconds, std::string* received) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  char chunk[4096];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, int(left.count())) <= 0) continue;
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return true;  // closed (or reset) by the server
    if (received) received->append(chunk, size_t(n));
  }
}

int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

}  // namespace upres::test
