// A small blocking HTTP and WebSocket client for the server tests (Boost.Beast).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace upres::test {

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// One request on a fresh connection to 127.0.0.1:port. `headers` are "Name: value" lines.
HttpReply http_request(int port, const std::string& method, const std::string& target,
                       const std::string& body = "", const std::vector<std::string>& headers = {});

struct ServerSentEvent {
  std::string name, data, id;
  double seconds = 0;  // arrival, from the start of the request
};
// GETs an event stream and reads it to its end.
std::vector<ServerSentEvent> read_event_stream(int port, const std::string& target, int* status = nullptr);

// A multipart/form-data body: fields, then one file part.
struct Multipart {
  std::string boundary = "upres-test-boundary-7f3a";
  std::string body;
  void field(const std::string& name, const std::string& value);
  void file(const std::string& name, const std::string& filename, const std::string& type,
            const std::string& data);
  std::string content_type() const { return "Content-Type: multipart/form-data; boundary=" + boundary; }
  std::string finish() const { return body + "--" + boundary + "--\r\n"; }
};

std::string read_file_bytes(const std::string& path);

// A plain TCP connection to 127.0.0.1:port for sending whatever bytes a test wants (a header a
// byte at a time, nothing at all) and seeing what comes back.
class RawConnection {
 public:
  explicit RawConnection(int port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  bool send(const std::string& bytes);  // false once the server has closed the connection
  // Reads until the server closes the connection or `seconds` pass; true when it closed.
  bool closed_within(double seconds, std::string* received = nullptr);

 private:
  int fd_ = -1;
};

// Resident memory of this process, in bytes.
int64_t resident_bytes();

}  // namespace upres::test
