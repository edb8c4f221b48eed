// SPDX-License-Identifier: Apache-2.0
// Parent side of a spawn: clone3 on a worker thread, the handshake, the result record.
#ifndef NSBOX_SPAWN_WORKER_H_
#define NSBOX_SPAWN_WORKER_H_

#include <napi.h>

#include <memory>

#include "plan.h"
#include "sync_msg.h"

namespace sbx {

class SpawnWorker : public Napi::AsyncWorker {
 public:
  SpawnWorker(Napi::Function callback, std::unique_ptr<Plan> plan);
  void Execute() override;
  void OnOK() override;

 private:
  std::unique_ptr<Plan> plan_;
  bool failed_ = false;
  nsbox_msg failure_{};
  int pid_ = -1;
  int pidfd_ = -1;
  int syncFd_ = -1;
  // An exec's workload, from its nsbox-init (-1 for none).
  int workloadPidfd_ = -1;
  int stdioFds_[3] = {-1, -1, -1};
};

// spawn(plan, callback(failure | null, spawned | null))
Napi::Value Spawn(const Napi::CallbackInfo& info);

}  // namespace sbx

#endif  // NSBOX_SPAWN_WORKER_H_
