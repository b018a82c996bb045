// Test support: runs a body in a forked child, for what a test cannot undo in its own process (a seccomp
// filter, a dropped uid or capability). The child reports through its exit status (no gtest assertion runs
// there); its stderr can be captured for the parent to check.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace moirai_test {

struct ChildOutcome {
  bool exited = false;  // false: killed by a signal (a crash), or fork failed
  int status = -1;      // the exit status when it exited
  std::string output;   // what it wrote to stderr, when captured
  std::string describe() const {
    return exited ? "exit status " + std::to_string(status) : "did not exit normally (" + output + ")";
  }
};

// Forks; the child runs `body()` and exits with the int it returns. With `capture_stderr`, the child's stderr
// goes to a pipe the parent reads to the end; otherwise it is the test's own.
template <class Body>
ChildOutcome run_in_child(Body body, bool capture_stderr = false) {
  ChildOutcome out;
  int fds[2] = {-1, -1};
  if (capture_stderr && pipe(fds) != 0) {
    out.output = std::string("pipe: ") + std::strerror(errno);
    return out;
  }
  std::fflush(nullptr);  // nothing buffered may be written twice, by parent and child
  const pid_t pid = fork();
  if (pid < 0) {
    out.output = std::string("fork: ") + std::strerror(errno);
    return out;
  }
  if (pid == 0) {
    if (capture_stderr) {
      dup2(fds[1], STDERR_FILENO);
      close(fds[0]);
      close(fds[1]);
    }
    const int status = body();
    std::fflush(nullptr);
    _exit(status);
  }
  if (capture_stderr) {
    close(fds[1]);
    char buf[4096];
    for (;;) {
      const ssize_t n = read(fds[0], buf, sizeof buf);
      if (n > 0) {
        out.output.append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        break;
      }
    }
    close(fds[0]);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return out;
  out.exited = WIFEXITED(status);
  out.status = out.exited ? WEXITSTATUS(status) : -1;
  if (!out.exited && WIFSIGNALED(status))
    out.output += " killed by signal " + std::to_string(WTERMSIG(status));
  return out;
}

}  // namespace moirai_test
