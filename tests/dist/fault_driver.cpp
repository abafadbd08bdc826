// A training run of two ranks in which rank 1 fails at step 2 in a chosen way, for
// mpi_run_test.cpp: `fault_driver die|hang|throw OUT_DIR`. The collective timeout is 3 s.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "dist/communicator.h"
#include "train/trainer.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    fmt::print(stderr, "usage: fault_driver die|hang|throw OUT_DIR\n");
    return 2;
  }
  const std::string mode = argv[1];
  const lnx::train::TrainConfig config = lnx::train::load_train_config(
      "", {"model.preset=attention-tiny", "data.source=mqar", "data.mqar_vocab_size=32", "train.steps=20",
           "train.batch_size=2", "train.seq_len=16", "train.eval_every=0", "train.save_every=0", "train.log_every=0",
           "train.collective_timeout=3", std::string("train.out_dir=") + argv[2]});
  lnx::train::TrainHooks hooks;
  const int rank = lnx::dist::Communicator::world().rank();
  hooks.after_step = [&](const lnx::train::StepMetrics& m) {
    const int64_t step = m.step;
    if (rank == 1 && step == 2) {
      if (mode == "die") raise(SIGKILL);
      if (mode == "hang") std::this_thread::sleep_for(std::chrono::minutes(10));
      if (mode == "throw") throw lnx::ValueError("injected failure");
    }
    return true;
  };
  lnx::train::train(config, hooks);
  return 0;
}
