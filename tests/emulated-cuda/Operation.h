// One operation of an emulated stream: queued until the driver must have
// completed it (EmulatedStreams.cpp), or recorded into a graph while the
// stream captures.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "DriverInternal.h"

namespace v4emu::driver {

struct Event;
struct Stream;

struct Operation {
  enum Kind { Launch, Memset, Memcpy, Record, Wait } kind;
  const char *call = ""; // the entry point that submitted it (messages name it)
  // Launch
  Function *function = nullptr;
  unsigned grid[3] = {}, block[3] = {}, shared = 0;
  std::vector<std::vector<unsigned char>> params; // copied at the call, as the driver does
  // Memset, Memcpy
  uintptr_t dst = 0, src = 0;
  size_t bytes = 0;
  unsigned char value = 0;
  // Memcpy between host and device: the host side, and whether the copy writes it.
  uintptr_t host = 0;
  bool writesHost = false;
  // Record: the event (null once the event is destroyed).
  Event *event = nullptr;

  // Set when queued: the submission order (all streams), other streams' work
  // that must run first ({stream, last sequence number}: the legacy stream's
  // implicit ordering, cuStreamWaitEvent), and the hash of the host range a
  // queued copy uses, which must not change behind it.
  uint64_t sequence = 0;
  std::vector<std::pair<Stream *, uint64_t>> after;
  bool watchesHost = false;
  uint64_t hostHash = 0;
};

} // namespace v4emu::driver
