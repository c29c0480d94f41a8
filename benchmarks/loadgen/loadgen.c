/* RTP load generator: many real-time call legs from one process, each paced on its own 20 ms grid.

   Part of emoscribe's benchmarks (GPL-3.0-or-later). Built from this source at run time by
   benchmarks/loadgen/__init__.py; no binary is kept in the repository.

   Of T legs in all (--total-legs), this process sends legs F, F + S, F + 2S, ... (--first-leg, --stride), so
   several processes can share one load. Leg i sends its packet k at  start + i * period / T + k * period:
   the legs' packets spread evenly over the period, as independent calls do, instead of one burst per period.
   Its payload is the script's packet (i * packets / T + k) mod packets, so the legs play different parts of
   the script at any moment; sequence number k, timestamp k * clock step, SSRC base + i. Each wake-up sends
   every packet that is due, in one sendmmsg call; wake-ups fall on a grid of --quantum-us (250 us), so a
   packet is sent up to that much late, never early, and the cost of waking does not grow with the legs. The lateness of every packet (the send call's return minus
   its due time) goes into a histogram in microseconds; the report is one JSON object on stdout. */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEADER 12
#define MAX_BATCH 1024
#define HISTOGRAM_US 1000000

static volatile sig_atomic_t stopping = 0;
static void on_signal(int signum) {
    (void)signum;
    stopping = 1;
}

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void sleep_until(int64_t ns) {
    struct timespec t = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR && !stopping) {
    }
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen --host HOST --port PORT --legs N --seconds S --script FILE\n"
            "               [--total-legs T] [--first-leg F] [--stride S] [--payload-bytes 160]\n"
            "               [--period-us 20000] [--clock-step 160] [--payload-type 0] [--ssrc 65536]\n"
            "               [--quantum-us 250] [--realtime 1]\n");
    exit(2);
}

static long percentile(const uint64_t *histogram, uint64_t total, double q) {
    if (total == 0) return 0;
    uint64_t rank = (uint64_t)(q * (double)(total - 1)), seen = 0;
    for (long us = 0; us <= HISTOGRAM_US; us++) {
        seen += histogram[us];
        if (seen > rank) return us;
    }
    return HISTOGRAM_US;
}

int main(int argc, char **argv) {
    const char *host = NULL, *port = NULL, *script_path = NULL;
    long legs = 0, total_legs = 0, first = 0, stride = 1, payload_bytes = 160, period_us = 20000;
    long clock_step = 160, payload_type = 0, realtime = 0, quantum_us = 250;
    unsigned long ssrc_base = 0x10000;
    double seconds = 0;
    if (argc % 2 == 0) usage();
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *key = argv[i], *value = argv[i + 1];
        if (!strcmp(key, "--host")) host = value;
        else if (!strcmp(key, "--port")) port = value;
        else if (!strcmp(key, "--legs")) legs = atol(value);
        else if (!strcmp(key, "--total-legs")) total_legs = atol(value);
        else if (!strcmp(key, "--first-leg")) first = atol(value);
        else if (!strcmp(key, "--stride")) stride = atol(value);
        else if (!strcmp(key, "--seconds")) seconds = atof(value);
        else if (!strcmp(key, "--script")) script_path = value;
        else if (!strcmp(key, "--payload-bytes")) payload_bytes = atol(value);
        else if (!strcmp(key, "--period-us")) period_us = atol(value);
        else if (!strcmp(key, "--clock-step")) clock_step = atol(value);
        else if (!strcmp(key, "--payload-type")) payload_type = atol(value);
        else if (!strcmp(key, "--ssrc")) ssrc_base = strtoul(value, NULL, 0);
        else if (!strcmp(key, "--realtime")) realtime = atol(value);
        else if (!strcmp(key, "--quantum-us")) quantum_us = atol(value);
        else usage();
    }
    if (total_legs == 0) total_legs = legs;
    if (!host || !port || !script_path || legs < 1 || seconds <= 0 || payload_bytes < 1 || period_us < 1 ||
        payload_type < 0 || payload_type > 127 || quantum_us < 1 || stride < 1 || first < 0 ||
        first + (legs - 1) * stride >= total_legs)
        usage();

    FILE *file = fopen(script_path, "rb");
    if (!file) {
        perror(script_path);
        return 1;
    }
    fseek(file, 0, SEEK_END);
    long script_size = ftell(file);
    fseek(file, 0, SEEK_SET);
    long packets = script_size / payload_bytes;
    unsigned char *script = malloc((size_t)script_size + 1);
    if (packets < 1 || fread(script, 1, (size_t)script_size, file) != (size_t)script_size) {
        fprintf(stderr, "%s: cannot read one payload of %ld bytes\n", script_path, payload_bytes);
        return 1;
    }
    fclose(file);

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM}, *target;
    int status = getaddrinfo(host, port, &hints, &target);
    if (status) {
        fprintf(stderr, "%s:%s: %s\n", host, port, gai_strerror(status));
        return 1;
    }
    int sock = socket(target->ai_family, SOCK_DGRAM, 0);
    if (sock < 0 || connect(sock, target->ai_addr, target->ai_addrlen)) {
        perror("socket");
        return 1;
    }
    freeaddrinfo(target);
    int buffer = 16 << 20;
    setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    prctl(PR_SET_TIMERSLACK, 1UL);
    int is_realtime = 0;
    if (realtime) {
        struct sched_param param = {.sched_priority = 10};
        is_realtime = sched_setscheduler(0, SCHED_FIFO, &param) == 0;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    size_t packet_size = HEADER + (size_t)payload_bytes;
    unsigned char *slots = calloc(MAX_BATCH, packet_size);
    struct mmsghdr *messages = calloc(MAX_BATCH, sizeof *messages);
    struct iovec *vectors = calloc(MAX_BATCH, sizeof *vectors);
    int64_t *due_of = calloc(MAX_BATCH, sizeof *due_of);
    uint64_t *histogram = calloc(HISTOGRAM_US + 1, sizeof *histogram);
    for (int b = 0; b < MAX_BATCH; b++) {
        vectors[b].iov_base = slots + (size_t)b * packet_size;
        vectors[b].iov_len = packet_size;
        messages[b].msg_hdr.msg_iov = &vectors[b];
        messages[b].msg_hdr.msg_iovlen = 1;
    }

    const int64_t period = (int64_t)period_us * 1000, quantum = (int64_t)quantum_us * 1000;
    const long ticks = (long)(seconds * 1e6 / (double)period_us);
    const int64_t start = now_ns() + 2000000;
    uint64_t sent = 0, errors = 0, total = 0, max_late = 0;
    /* Packets in due order: number n is period n / legs of this process's leg n % legs. */
    for (long long next = 0, last = (long long)ticks * legs; next < last && !stopping;) {
        long tick = (long)(next / legs), leg = first + (long)(next % legs) * stride;
        int64_t due = start + tick * period + leg * period / total_legs;
        int64_t wake = start + (due - start + quantum - 1) / quantum * quantum;
        if (now_ns() < wake) sleep_until(wake);
        int64_t now = now_ns();
        int batch = 0;
        while (next < last && batch < MAX_BATCH) {
            tick = (long)(next / legs);
            leg = first + (long)(next % legs) * stride;
            due = start + tick * period + leg * period / total_legs;
            if (due > now) break;
            unsigned char *packet = slots + (size_t)batch * packet_size;
            uint32_t timestamp = (uint32_t)((uint64_t)tick * (uint64_t)clock_step);
            uint32_t ssrc = (uint32_t)(ssrc_base + (unsigned long)leg);
            packet[0] = 0x80;
            packet[1] = (unsigned char)payload_type;
            packet[2] = (unsigned char)(tick >> 8);
            packet[3] = (unsigned char)tick;
            for (int byte = 0; byte < 4; byte++) {
                packet[4 + byte] = (unsigned char)(timestamp >> (24 - 8 * byte));
                packet[8 + byte] = (unsigned char)(ssrc >> (24 - 8 * byte));
            }
            long index = (long)(((long long)leg * packets / total_legs + tick) % packets);
            memcpy(packet + HEADER, script + index * payload_bytes, (size_t)payload_bytes);
            due_of[batch++] = due;
            next++;
        }
        for (int done = 0; done < batch;) {
            int n = sendmmsg(sock, messages + done, (unsigned)(batch - done), 0);
            if (n < 0) {
                if (errno == EINTR) continue;
                errors++; /* e.g. ECONNREFUSED while nobody listens: that packet is lost, not retried */
                n = 1;
            } else {
                sent += (uint64_t)n;
            }
            int64_t returned = now_ns();
            for (int b = done; b < done + n; b++) {
                int64_t late_us = (returned - due_of[b]) / 1000; /* never negative: sent only once due */
                if (late_us < 0) late_us = 0;
                if (late_us > HISTOGRAM_US) late_us = HISTOGRAM_US;
                histogram[late_us]++;
                if ((uint64_t)late_us > max_late) max_late = (uint64_t)late_us;
                total++;
            }
            done += n;
        }
    }
    double wall = (double)(now_ns() - start) / 1e9;
    struct rusage self;
    getrusage(RUSAGE_SELF, &self);
    double cpu = (double)self.ru_utime.tv_sec + (double)self.ru_utime.tv_usec / 1e6 +
                 (double)self.ru_stime.tv_sec + (double)self.ru_stime.tv_usec / 1e6;
    printf("{\"legs\": %ld, \"ticks\": %ld, \"packets\": %llu, \"sent\": %llu, \"send_errors\": %llu, "
           "\"late_p50_us\": %ld, \"late_p99_us\": %ld, \"late_p999_us\": %ld, \"late_max_us\": %llu, "
           "\"wall_s\": %.3f, \"cpu_s\": %.3f, \"realtime\": %s, \"interrupted\": %s}\n",
           legs, ticks, (unsigned long long)total, (unsigned long long)sent, (unsigned long long)errors,
           percentile(histogram, total, 0.5), percentile(histogram, total, 0.99),
           percentile(histogram, total, 0.999), (unsigned long long)max_late, wall, cpu,
           is_realtime ? "true" : "false", stopping ? "true" : "false");
    return 0;
}
