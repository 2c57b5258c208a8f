def answer() -> 'i32':
    return 42
