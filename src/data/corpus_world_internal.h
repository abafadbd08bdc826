// The fixed little world the built-in corpus tells stories about (internal to corpus.cpp).
// Every table is written here by hand; a person's facts are derived from their index by
// fixed formulas so they never depend on the seed.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace lnx::data::world {

using W = std::string_view;

struct Name {
  W name;
  bool she;
};
inline constexpr std::array<Name, 24> kPeople = {{
    {"Anna", true},  {"Ben", false},    {"Clara", true}, {"David", false}, {"Emma", true}, {"Finn", false},
    {"Grace", true}, {"Hugo", false},   {"Iris", true},  {"Jack", false},  {"Kate", true}, {"Leo", false},
    {"Mia", true},   {"Noah", false},   {"Olive", true}, {"Paul", false},  {"Rosa", true}, {"Sam", false},
    {"Tara", true},  {"Victor", false}, {"Wendy", true}, {"Omar", false},  {"Zoe", true},  {"Yusuf", false},
}};

inline constexpr std::array<W, 12> kTowns = {"Millbrook", "Stonebridge", "Redcliff", "Oakvale",
                                             "Fernhill",  "Larkspur",    "Westmoor", "Pinecrest",
                                             "Sandport",  "Willowby",    "Ironwood", "Greyhaven"};

struct Job {
  W job, workplace;
};
inline constexpr std::array<Job, 12> kJobs = {{
    {"baker", "bakery"},
    {"farmer", "farm"},
    {"teacher", "school"},
    {"fisher", "harbor"},
    {"doctor", "clinic"},
    {"painter", "studio"},
    {"builder", "workshop"},
    {"miller", "mill"},
    {"librarian", "library"},
    {"gardener", "garden"},
    {"shopkeeper", "shop"},
    {"cook", "inn"},
}};

inline constexpr std::array<W, 16> kPlaces = {"market", "park",    "river",  "bridge", "forest", "hill",
                                              "square", "station", "beach",  "meadow", "lake",   "tower",
                                              "field",  "harbor",  "garden", "well"};

struct Animal {
  W animal, sound;
};
inline constexpr std::array<Animal, 14> kAnimals = {{
    {"cat", "meow"},
    {"dog", "woof"},
    {"cow", "moo"},
    {"sheep", "baa"},
    {"duck", "quack"},
    {"owl", "hoot"},
    {"horse", "neigh"},
    {"goat", "maa"},
    {"pig", "oink"},
    {"hen", "cluck"},
    {"crow", "caw"},
    {"frog", "ribbit"},
    {"mouse", "squeak"},
    {"goose", "honk"},
}};

struct Fruit {
  W one, many, color;
};
inline constexpr std::array<Fruit, 12> kFruits = {{
    {"apple", "apples", "red"},
    {"lemon", "lemons", "yellow"},
    {"pear", "pears", "green"},
    {"plum", "plums", "purple"},
    {"cherry", "cherries", "red"},
    {"carrot", "carrots", "orange"},
    {"banana", "bananas", "yellow"},
    {"grape", "grapes", "purple"},
    {"orange", "oranges", "orange"},
    {"tomato", "tomatoes", "red"},
    {"cucumber", "cucumbers", "green"},
    {"potato", "potatoes", "brown"},
}};

inline constexpr std::array<W, 14> kFoods = {"bread", "soup", "cheese",   "honey", "rice", "beans",   "fish",
                                             "eggs",  "cake", "porridge", "pie",   "stew", "noodles", "pancakes"};

inline constexpr std::array<W, 24> kObjects = {
    "key",   "book", "map",    "lamp",   "kite",   "ball", "bell", "brush", "candle", "clock", "drum",  "flag",
    "glove", "hat",  "ladder", "letter", "mirror", "ring", "rope", "scarf", "shell",  "spoon", "stone", "whistle"};

inline constexpr std::array<W, 10> kContainers = {"box",      "basket", "drawer", "bag",    "jar",
                                                  "cupboard", "chest",  "pocket", "bucket", "cart"};

inline constexpr std::array<W, 10> kColors = {"red",   "blue",  "green",  "yellow", "white",
                                              "black", "brown", "purple", "orange", "grey"};

inline constexpr std::array<W, 18> kAdjectives = {"small",   "big",    "old",    "new",   "heavy", "light",
                                                  "shiny",   "dusty",  "round",  "long",  "short", "tiny",
                                                  "strange", "pretty", "broken", "clean", "warm",  "soft"};

inline constexpr std::array<W, 10> kFeelings = {"happy",  "tired", "hungry",    "calm",     "proud",
                                                "sleepy", "glad",  "surprised", "cheerful", "worried"};

inline constexpr std::array<W, 7> kDays = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                           "Friday", "Saturday", "Sunday"};

inline constexpr std::array<W, 12> kMonths = {"January", "February", "March",     "April",   "May",      "June",
                                              "July",    "August",   "September", "October", "November", "December"};

struct Weather {
  W adjective, sentence;
};
inline constexpr std::array<Weather, 6> kWeather = {{
    {"sunny", "the sun was shining"},
    {"rainy", "it was raining"},
    {"windy", "the wind was blowing"},
    {"cloudy", "the sky was grey"},
    {"foggy", "a thick fog lay on the fields"},
    {"snowy", "snow was falling"},
}};

// Past tenses of ways to go somewhere.
inline constexpr std::array<W, 8> kMoves = {"walked", "ran",    "hurried",  "wandered",
                                            "rode",   "cycled", "strolled", "went"};

inline constexpr std::array<W, 10> kFinds = {"found",   "saw",     "picked up", "noticed", "dropped",
                                             "cleaned", "painted", "fixed",     "lost",    "carried"};

// Facts of person i: fixed for every seed.
inline int64_t town_of(int64_t i) { return (i * 5 + 3) % static_cast<int64_t>(kTowns.size()); }
inline int64_t job_of(int64_t i) { return (i * 7 + 1) % static_cast<int64_t>(kJobs.size()); }
inline int64_t pet_of(int64_t i) { return (i * 3 + 2) % static_cast<int64_t>(kAnimals.size()); }
inline int64_t food_of(int64_t i) { return (i * 11 + 4) % static_cast<int64_t>(kFoods.size()); }

}  // namespace lnx::data::world
