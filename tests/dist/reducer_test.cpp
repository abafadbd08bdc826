// The communicator's single-rank backend and the gradient reducer on one rank: buckets, the
// flags that keep an untouched parameter's gradient undefined, ownership when sharded, and
// buckets started by the backward itself. (The same code across ranks: mpi_run_test.cpp.)
#include <gtest/gtest.h>

#include "dist/communicator.h"
#include "dist/gradient_reducer.h"
#include "tensor/autograd.h"
#include "tensor/ops.h"

namespace lnx::dist {
namespace {

TEST(Communicator, OneRankCopiesOrDoesNothing) {
  Communicator& c = Communicator::self();
  EXPECT_EQ(c.size(), 1);
  EXPECT_TRUE(c.root());
  std::vector<double> send{1, 2, 3}, recv(3, 0);
  Request r = c.reduce_scatter_sum_start(send.data(), recv.data(), {3}, DType::f64, "test");
  c.wait(r);
  EXPECT_EQ(recv, send);
  EXPECT_EQ(c.allreduce_sum(2.5, "test"), 2.5);
  std::string bytes = "abc";
  c.broadcast(bytes, 0, "test");
  EXPECT_EQ(c.gather(bytes, 0, "test"), std::vector<std::string>{"abc"});
  EXPECT_THROW(c.reduce_scatter_sum_start(send.data(), recv.data(), {1, 2}, DType::f64, "test"), ValueError);
  EXPECT_THROW(c.set_timeout(0), ValueError);
}

struct TinyModel {
  TensorDict params;
  TinyModel() {
    Generator gen(3);
    for (const char* name : {"a", "b", "c", "d"}) {
      Tensor p = randn({8, 8}, gen);
      p.set_requires_grad(true);
      params.insert(name, p);
    }
  }
  Tensor loss(bool use_d) const {
    Generator gen(4);
    Tensor h = randn({2, 8}, gen);
    for (const char* name : {"a", "b", "c"}) h = tanh(matmul(h, params.at(name)));
    if (use_d) h = matmul(h, params.at("d"));
    return sum(h);
  }
};

TEST(GradientReducer, OneRankKeepsTheGradientsAndLeavesUntouchedOnesUndefined) {
  TinyModel m;
  m.loss(false).backward();
  std::vector<std::vector<float>> before;
  for (const char* name : {"a", "b", "c"}) before.push_back(m.params.at(name).grad().to_vector<float>());
  GradientReducer r(Communicator::self(), m.params, {256, false});
  EXPECT_EQ(r.bucket_sizes().size(), 4u);  // 256 bytes each: one 8×8 f32 parameter per bucket
  r.finish();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(m.params.at(std::string(1, "abc"[i])).grad().to_vector<float>(), before[i]);
  EXPECT_FALSE(m.params.at("d").grad().defined());  // no gradient anywhere: still none
}

TEST(GradientReducer, BucketsStartDuringTheBackward) {
  TinyModel m;
  GradientReducer r(Communicator::self(), m.params, {256, false});
  backward({m.loss(true)}, {}, false, r.hook());
  EXPECT_EQ(r.stats().early_buckets, 4);
  r.finish();
  // With `d` unused, its bucket (the first to start: parameters go in reverse) never
  // completes during the backward and holds back the rest until finish().
  for (const auto& [name, p] : m.params) p.zero_grad();
  backward({m.loss(false)}, {}, false, r.hook());
  EXPECT_EQ(r.stats().early_buckets, 4);
  r.finish();
  EXPECT_TRUE(m.params.at("a").grad().defined());
}

TEST(GradientReducer, ShardedOnOneRankOwnsEverything) {
  TinyModel m;
  GradientReducer r(Communicator::self(), m.params, {1 << 20, true});
  EXPECT_EQ(r.owned().size(), 4u);
  EXPECT_EQ(r.owner("c"), 0);
  EXPECT_EQ(r.bucket_sizes(), (std::vector<int64_t>{4 * 64 * 4}));
  m.loss(true).backward();
  const std::vector<float> a = m.params.at("a").grad().to_vector<float>();
  r.finish();
  EXPECT_EQ(m.params.at("a").grad().to_vector<float>(), a);
  r.gather_parameters();
  EXPECT_THROW(r.owner("zz"), ValueError);
}

}  // namespace
}  // namespace lnx::dist
