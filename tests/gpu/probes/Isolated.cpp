#include "tests/gpu/probes/Isolated.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <exception>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace v4probe {
namespace {

void writeAll(int fd, const void *data, size_t size) {
  const char *p = static_cast<const char *>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    p += n;
    size -= static_cast<size_t>(n);
  }
}

// The child's message: one tag byte ('K' bytes / 'E' error text), then the payload.
[[noreturn]] void childMain(int fd, const std::function<std::vector<uint8_t>()> &body) {
  char tag = 'K';
  std::vector<uint8_t> payload;
  try {
    payload = body();
  } catch (const std::exception &e) {
    tag = 'E';
    const std::string message = e.what();
    payload.assign(message.begin(), message.end());
  } catch (...) {
    tag = 'E';
    const std::string message = "an exception that is not a std::exception";
    payload.assign(message.begin(), message.end());
  }
  writeAll(fd, &tag, 1);
  writeAll(fd, payload.data(), payload.size());
  ::close(fd);
  std::fflush(nullptr);
  ::_exit(0);
}

} // namespace

IsolatedResult runIsolated(const std::function<std::vector<uint8_t>()> &body, int timeoutSeconds) {
  IsolatedResult result;
  int fds[2];
  if (::pipe(fds) != 0) {
    result.error = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    result.error = std::string("fork: ") + std::strerror(errno);
    ::close(fds[0]);
    ::close(fds[1]);
    return result;
  }
  if (pid == 0) {
    ::close(fds[0]);
    childMain(fds[1], body);
  }
  ::close(fds[1]);
  std::vector<uint8_t> message;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeoutSeconds);
  bool timedOut = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timedOut = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR)
      continue;
    if (ready == 0) {
      timedOut = true;
      break;
    }
    uint8_t buffer[65536];
    const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break; // end of file: the child closed its end (done or died)
    message.insert(message.end(), buffer, buffer + n);
  }
  ::close(fds[0]);
  if (timedOut)
    ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timedOut) {
    result.error = "timed out after " + std::to_string(timeoutSeconds) + " s (killed: a hang, e.g. a wait that never completes)";
    return result;
  }
  if (message.empty()) {
    result.error = WIFSIGNALED(status) ? "the probe process died of signal " + std::to_string(WTERMSIG(status)) + " (" +
                                             strsignal(WTERMSIG(status)) + ")"
                                       : "the probe process exited with status " + std::to_string(WEXITSTATUS(status)) +
                                             " and no result";
    return result;
  }
  if (message[0] == 'E') {
    result.error.assign(message.begin() + 1, message.end());
    return result;
  }
  result.ok = true;
  result.bytes.assign(message.begin() + 1, message.end());
  return result;
}

} // namespace v4probe
