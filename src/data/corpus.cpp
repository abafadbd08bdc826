// The built-in corpus generator: story templates over the fixed world of corpus_world_internal.h, and
// the unigram entropy used to judge a model trained on it. Sizes in bytes; entropy in bits.
#include "data/corpus.h"

#include <cmath>

#include "data/corpus_world_internal.h"
#include "tensor/error.h"
#include "tensor/tensor.h"

namespace lnx::data {

namespace {

using namespace world;

constexpr std::array<W, 20> kUnits = {"zero",     "one",     "two",     "three",     "four",     "five",    "six",
                                      "seven",    "eight",   "nine",    "ten",       "eleven",   "twelve",  "thirteen",
                                      "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
constexpr std::array<W, 10> kTens = {"",      "",      "twenty",  "thirty", "forty",
                                     "fifty", "sixty", "seventy", "eighty", "ninety"};

std::string capitalized(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

// Appends one story (a line of sentences) at a time; all choices come from one seeded
// generator, so the text is a pure function of the seed.
class StoryWriter {
 public:
  StoryWriter(uint64_t seed, std::string& out) : gen_(seed), out_(out) {}

  void story() {
    const int64_t kind = below(100);
    if (kind < 24)
      daily();
    else if (kind < 40)
      counting();
    else if (kind < 56)
      lesson();
    else if (kind < 66)
      facts();
    else if (kind < 74)
      calendar();
    else if (kind < 90)
      recall();
    else
      colors();
    out_ += "\n\n";
  }

 private:
  int64_t below(int64_t n) { return static_cast<int64_t>(gen_.next_u64() % static_cast<uint64_t>(n)); }
  int64_t between(int64_t lo, int64_t hi) { return lo + below(hi - lo + 1); }  // inclusive
  bool chance(int64_t percent) { return below(100) < percent; }
  template <class A> const typename A::value_type& pick(const A& table) {
    return table[static_cast<size_t>(below(static_cast<int64_t>(table.size())))];
  }
  int64_t person() { return below(static_cast<int64_t>(kPeople.size())); }
  int64_t other_than(int64_t p) {
    const int64_t n = static_cast<int64_t>(kPeople.size());
    return (p + 1 + below(n - 1)) % n;
  }

  static std::string name(int64_t p) { return std::string(kPeople[p].name); }
  static W he(int64_t p) { return kPeople[p].she ? "she" : "he"; }
  static W his(int64_t p) { return kPeople[p].she ? "her" : "his"; }
  static W him(int64_t p) { return kPeople[p].she ? "her" : "him"; }

  // Appends a sentence, separated from the previous one by a space, first letter capitalised.
  void say(const std::string& sentence) {
    if (!out_.empty() && out_.back() != '\n') out_ += ' ';
    out_ += capitalized(sentence);
  }
  template <class... Args> void sayf(fmt::format_string<Args...> f, Args&&... args) {
    say(fmt::format(f, std::forward<Args>(args)...));
  }

  // "a" or "an" followed by the word.
  static std::string a(W word) {
    const bool vowel = !word.empty() && std::string_view("aeiou").find(word[0]) != std::string_view::npos;
    return (vowel ? "an " : "a ") + std::string(word);
  }

  std::string fruits(int64_t n, const Fruit& f) { return number_words(n) + " " + std::string(n == 1 ? f.one : f.many); }

  void daily() {
    const int64_t p = person(), q = other_than(p);
    const W place = pick(kPlaces);
    sayf("on {}, {} woke up early.", pick(kDays), name(p));
    if (chance(70)) sayf("in {} {}.", kTowns[town_of(p)], pick(kWeather).sentence);
    sayf("{} {} to the {} with {} {}.", name(p), pick(kMoves), place, his(p), kAnimals[pet_of(p)].animal);
    if (chance(60)) {
      sayf("there {} met {}.", he(p), name(q));
      sayf("\"Good morning, {},\" said {}. \"Where are you going?\"", name(q), name(p));
      sayf("\"To the {}. I am {},\" said {}.", kJobs[job_of(q)].workplace, a(kJobs[job_of(q)].job), name(q));
    }
    sayf("{} {} {} {} near the {}.", name(p), pick(kFinds), a(pick(kAdjectives)), pick(kObjects), place);
    if (chance(70)) sayf("in the evening {} went home and ate {}.", name(p), kFoods[food_of(p)]);
    sayf("{} was {}.", he(p), pick(kFeelings));
  }

  void counting() {
    const int64_t p = person(), q = other_than(p);
    const Fruit& f = pick(kFruits);
    const int64_t had = between(1, 12), given = between(1, 12), total = had + given;
    const int64_t eaten = between(1, total - 1);
    sayf("{} had {}.", name(p), fruits(had, f));
    sayf("{} gave {} {} more, so now {} has {}.", name(q), him(p), number_words(given), name(p), fruits(total, f));
    sayf("then {} ate {} of them, and {} were left.", name(p), number_words(eaten), number_words(total - eaten));
    if (chance(40)) {
      const int64_t n = between(2, 10);
      std::string list;
      for (int64_t i = 1; i <= n; ++i) list += (i > 1 ? ", " : "") + number_words(i);
      sayf("{} counted the {} in the basket: {}.", name(q), f.many, list);
    }
  }

  // One arithmetic fact a op b = c, in words (digits when `digits`).
  std::string arithmetic(bool digits, bool question) {
    const int64_t op = below(3);
    int64_t a, b, c;
    if (op == 0)
      a = between(0, 20), b = between(0, 20), c = a + b;
    else if (op == 1)
      a = between(0, 20), b = between(0, a), c = a - b;
    else
      a = between(0, 10), b = between(0, 10), c = a * b;
    static constexpr std::array<W, 3> kWordOps = {"plus", "minus", "times"}, kSymbolOps = {"+", "-", "x"};
    if (digits) return fmt::format("{} {} {} = {}", a, kSymbolOps[op], b, c);
    if (question)
      return fmt::format("what is {} {} {}?|{}", number_words(a), kWordOps[op], number_words(b), number_words(c));
    return fmt::format("{} {} {} is {}", number_words(a), kWordOps[op], number_words(b), number_words(c));
  }

  void lesson() {
    // Hugo and Victor are the world's teachers (job_of(i) == 2 for i = 7, 19).
    const int64_t teacher = chance(50) ? 7 : 19, student = other_than(teacher);
    const std::string qa = arithmetic(false, true);
    const size_t bar = qa.find('|');
    sayf("in the school of {}, {} asked the class, \"{}\"", kTowns[town_of(teacher)], name(teacher),
         capitalized(qa.substr(0, bar)));
    sayf("\"{},\" said {}.", capitalized(qa.substr(bar + 1)), name(student));
    sayf("\"Well done,\" said {}.", name(teacher));
    const int64_t facts = between(2, 5);
    for (int64_t i = 0; i < facts; ++i) {
      const bool digits = chance(35);
      say(arithmetic(digits, false) + ".");
    }
  }

  void facts() {
    const int64_t people = between(1, 2);
    for (int64_t k = 0; k < people; ++k) {
      const int64_t p = person();
      const Animal& pet = kAnimals[pet_of(p)];
      sayf("{} lives in {}.", name(p), kTowns[town_of(p)]);
      sayf("{} is {} and works at the {}.", he(p), a(kJobs[job_of(p)].job), kJobs[job_of(p)].workplace);
      if (chance(60)) sayf("{} has {}, and the {} says {}.", name(p), a(pet.animal), pet.animal, pet.sound);
      if (chance(60)) sayf("{} loves {}.", name(p), kFoods[food_of(p)]);
    }
  }

  void calendar() {
    const int64_t d = below(7), m = below(12);
    sayf("the day after {} is {}.", kDays[d], kDays[(d + 1) % 7]);
    if (chance(60)) sayf("the day before {} is {}.", kDays[(d + 1) % 7], kDays[d]);
    sayf("after {} comes {}.", kMonths[m], kMonths[(m + 1) % 12]);
    if (chance(50)) {
      const int64_t from = between(0, 90), to = from + between(2, 8);
      std::string list;
      for (int64_t i = from; i <= to; ++i) list += (i > from ? ", " : "") + number_words(i);
      sayf("{} counted from {} to {}: {}.", name(person()), number_words(from), number_words(to), list);
    }
  }

  void recall() {
    const int64_t p = person(), q = other_than(p);
    const W object = pick(kObjects), container = pick(kContainers);
    W object2 = pick(kObjects), container2 = pick(kContainers);
    while (object2 == object) object2 = pick(kObjects);
    while (container2 == container) container2 = pick(kContainers);
    const bool two = chance(60), ask_second = two && chance(50);
    if (two)
      sayf("{} put the {} in the {} and the {} in the {}.", name(p), object, container, object2, container2);
    else
      sayf("{} put the {} in the {}.", name(p), object, container);
    sayf("then {} {} to the {}.", he(p), pick(kMoves), pick(kPlaces));
    if (chance(50)) sayf("{} was {}.", he(p), pick(kFeelings));
    const W asked = ask_second ? object2 : object, where = ask_second ? container2 : container;
    sayf("later {} asked, \"Where is the {}?\"", name(q), asked);
    sayf("\"The {} is in the {},\" said {}.", asked, where, name(p));
  }

  void colors() {
    const int64_t p = person();
    const Fruit& f = pick(kFruits);
    sayf("the {} is {}.", f.one, f.color);
    const int64_t n = between(2, 9);
    sayf("{} bought {} at the market, and they were all {}.", name(p), fruits(n, f), f.color);
    if (chance(60)) sayf("{} also has {} {}.", he(p), a(pick(kColors)), pick(kObjects));
  }

  Generator gen_;
  std::string& out_;
};

}  // namespace

std::string number_words(int64_t n) {
  LNX_CHECK(n >= 0 && n <= 100, ValueError, "[number_words] n must be in [0, 100], got {}", n);
  if (n == 100) return "one hundred";
  if (n < 20) return std::string(kUnits[n]);
  std::string s(kTens[n / 10]);
  if (n % 10 != 0) {
    s += '-';
    s += kUnits[n % 10];
  }
  return s;
}

std::string builtin_corpus(int64_t approx_bytes, uint64_t seed) {
  LNX_CHECK(approx_bytes >= 0, ValueError, "[builtin_corpus] approx_bytes must be >= 0, got {}", approx_bytes);
  std::string out;
  out.reserve(static_cast<size_t>(approx_bytes) + 1024);
  StoryWriter writer(seed, out);
  while (static_cast<int64_t>(out.size()) < approx_bytes) writer.story();
  return out;
}

double unigram_entropy_bits(const std::vector<int32_t>& ids, int64_t vocab) {
  LNX_CHECK(vocab >= 1, ValueError, "[unigram_entropy_bits] vocab must be >= 1, got {}", vocab);
  std::vector<int64_t> counts(static_cast<size_t>(vocab), 0);
  for (size_t i = 0; i < ids.size(); ++i) {
    LNX_CHECK(ids[i] >= 0 && ids[i] < vocab, ValueError,
              "[unigram_entropy_bits] ids must be in [0, {}), id {} at position {} is not", vocab, ids[i], i);
    ++counts[static_cast<size_t>(ids[i])];
  }
  if (ids.empty()) return 0.0;
  const double n = static_cast<double>(ids.size());
  double bits = 0.0;
  for (const int64_t c : counts)
    if (c > 0) bits -= (static_cast<double>(c) / n) * std::log2(static_cast<double>(c) / n);
  return bits;
}

}  // namespace lnx::data
