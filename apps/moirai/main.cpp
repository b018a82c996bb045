#include <cstdio>
int main() {
  std::puts("moirai");
  return 0;
}
