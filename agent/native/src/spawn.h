// Running a helper program to its end off the event loop (spawn.cc).
#pragma once
#include <string>
#include <vector>

namespace berth {

struct SpawnResult {
  int code = -1;   // exit status, or -1 when killed by a signal
  int signal = 0;  // the signal that killed it, or 0
  std::string stderr_text;
};

// posix_spawnp(argv[0]) with stdin and stdout on /dev/null, waits for it and
// returns its status and stderr (the first 16 KiB). Throws SysError (step
// "spawn") when it cannot be started. Blocks: call it on a thread of its own.
SpawnResult SpawnWait(const std::vector<std::string>& argv);

}  // namespace berth
