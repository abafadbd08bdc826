// A user's reward program for post-training: a shell command (run by /bin/sh -c) that reads
// JSON lines {"prompt": …, "completion": …} on its standard input and writes one number per
// line on its standard output, in the same order (invalid UTF-8 in a completion is written as
// U+FFFD). Its standard error passes through.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace lnx::posttrain {

// The rewards of (prompt, completion) pairs. ValueError naming the command when it cannot be
// started, exits with a failure, writes the wrong number of lines or a line that is not a
// finite number, or does not finish within timeout_s (it is then killed).
std::vector<double> run_reward_program(const std::string& command,
                                       const std::vector<std::pair<std::string, std::string>>& items, double timeout_s);

}  // namespace lnx::posttrain
