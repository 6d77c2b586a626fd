/* The sampling session's side of uploading: ConfigureAgent parameters in
 * force, and each finished window encoded, then posted by a worker thread
 * (so a slow endpoint never stalls sampling) or kept in the spool. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "cgprof/encode.h"
#include "cgprof/log.h"
#include "upload_priv.h"

/* Windows waiting for the worker; beyond this many the endpoint is not
 * keeping up and new windows go straight to the spool. */
#define REPORTER_MAX_QUEUED 4

struct job {
	struct cg_batch b; /* body owned */
	struct job *next;
};

struct cg_reporter {
	const struct cg_config *c;
	struct cg_uploader *u; /* NULL with no_upload */
	struct cg_agent_params params;
	unsigned seq;
	int last_fatal;        /* worker only: error already explained */

	pthread_mutex_t spool_mu; /* the spool handle is shared */
	struct cg_spool *spool;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail;
	unsigned queued;
	bool stopping;
	volatile bool abort_configure; /* ending: abandon a ConfigureAgent in flight */
	bool want_configure;   /* the worker should call ConfigureAgent */
	int configure_err;     /* the last asynchronous call's result */
	bool worker_started;
	pthread_t worker;
};

void reporter_uuid(char out[37])
{
	unsigned char b[16];
	if (RAND_bytes(b, sizeof(b)) != 1) {
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)rand();
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
		 b[15]);
}

int reporter_new(const struct cg_config *c, struct cg_reporter **out)
{
	struct cg_reporter *r;
	int err = 0;

	*out = NULL;
	if (!c->profiling_group || !*c->profiling_group)
		return 0;
	if (!config_valid_group(c->profiling_group))
		return cg_fail(-EINVAL, "profiling group '%.300s' is invalid: use 1-255 letters, "
				       "digits, _ or -",
			       c->profiling_group);
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->c = c;
	uploader_default_params(c, &r->params);
	pthread_mutex_init(&r->mu, NULL);
	pthread_mutex_init(&r->spool_mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	/* The spool is where every window goes when it cannot be sent: a
	 * bad key or an unusable directory must stop the run before it
	 * samples, not lose every window after it. */
	if ((err = spool_open(c, &r->spool)) ||
	    (!c->no_upload && (err = uploader_new(c, &r->u)))) {
		reporter_free(r);
		return err;
	}
	if (r->u)
		uploader_set_configure_abort(r->u, &r->abort_configure);
	*out = r;
	return 0;
}

void reporter_free(struct cg_reporter *r)
{
	if (!r)
		return;
	/* The worker finishes what is queued (the final window included)
	 * before it exits. */
	if (r->worker_started) {
		pthread_mutex_lock(&r->mu);
		r->stopping = true;
		/* The queued windows are still posted; only the agent call, which
		 * nobody will use now, is abandoned. */
		r->abort_configure = true;
		pthread_cond_signal(&r->cv);
		pthread_mutex_unlock(&r->mu);
		pthread_join(r->worker, NULL);
	}
	pthread_mutex_destroy(&r->mu);
	pthread_mutex_destroy(&r->spool_mu);
	pthread_cond_destroy(&r->cv);
	uploader_free(r->u);
	if (r->spool)
		spool_close(r->spool);
	free(r);
}

struct cg_uploader *reporter_uploader(struct cg_reporter *r) { return r ? r->u : NULL; }

static int start_worker(struct cg_reporter *r);

/* Never waits: the call goes to the worker and the parameters in force
 * (the defaults until a first reply) come back at once, so sampling
 * starts immediately and a slow or hung endpoint never stalls it. */
int reporter_configure(struct cg_reporter *r, struct cg_agent_params *p)
{
	int err = 0;
	if (!r)
		return 0;
	pthread_mutex_lock(&r->mu);
	if (r->u && (r->worker_started || start_worker(r) == 0)) {
		r->want_configure = true;
		pthread_cond_signal(&r->cv);
	}
	err = r->configure_err;
	if (err)
		cg_fail(err, "ConfigureAgent failed; keeping the current parameters");
	*p = r->params;
	pthread_mutex_unlock(&r->mu);
	return err;
}

int reporter_configure_sync(struct cg_reporter *r, struct cg_agent_params *p)
{
	if (!r)
		return 0;
	pthread_mutex_lock(&r->mu);
	struct cg_agent_params next = r->params;
	pthread_mutex_unlock(&r->mu);
	int err = r->u ? uploader_configure_agent(r->u, &next) : 0;
	pthread_mutex_lock(&r->mu);
	if (err == 0)
		r->params = next;
	r->configure_err = err;
	*p = r->params;
	pthread_mutex_unlock(&r->mu);
	return err;
}

/* why: NULL to keep the batch for `cgprof upload`, or the endpoint's
 * reason for refusing it (then it goes to refused/, never resent). */
static int spool_batch(struct cg_reporter *r, const struct cg_batch *b, const char *why)
{
	int err = 0;
	pthread_mutex_lock(&r->spool_mu);
	if (!r->spool)
		err = spool_open(r->c, &r->spool);
	if (!err)
		err = why ? spool_put_refused(r->spool, b, why) : spool_put(r->spool, b);
	pthread_mutex_unlock(&r->spool_mu);
	if (err)
		cg_error("batch %s could not be spooled, it is lost: %s", b->id,
			 cg_lasterr()[0] ? cg_lasterr() : strerror(-err));
	return err;
}

/* Post one batch; on failure explain (a configuration error only once:
 * the same wrong secret every window would fill the log) and spool it. */
static int post_or_spool(struct cg_reporter *r, const struct cg_batch *b)
{
	int err = uploader_post(r->u, b);
	if (err == 0) {
		r->last_fatal = 0;
		return 0;
	}
	if (err == -EBADMSG) {
		/* The endpoint refused this batch itself: sending it again
		 * would be refused again. Kept for a person, with the reason. */
		char why[512];
		snprintf(why, sizeof(why), "%s", cg_lasterr());
		cg_clearerr();
		int s = spool_batch(r, b, why);
		cg_clearerr();
		return s ? s : err;
	}
	if (err == -EAGAIN)
		cg_warn("upload failed, batch %s goes to the spool: %s", b->id, cg_lasterr());
	else if (err != r->last_fatal) {
		cg_error("%s; batches go to the spool until this is fixed", cg_lasterr());
		r->last_fatal = err;
	}
	cg_clearerr();
	int s = spool_batch(r, b, NULL);
	cg_clearerr();
	return s ? s : err;
}

static void worker_configure(struct cg_reporter *r)
{
	struct cg_agent_params next = r->params; /* read under mu */
	pthread_mutex_unlock(&r->mu);
	int err = uploader_configure_agent(r->u, &next);
	if (err && err != r->configure_err)
		cg_warn("ConfigureAgent: %s; keeping the current parameters", cg_lasterr());
	cg_clearerr();
	pthread_mutex_lock(&r->mu);
	if (err == 0) {
		if (next.should_profile != r->params.should_profile)
			cg_info("profiling group %s: %s profiling", r->c->profiling_group,
				next.should_profile ? "resume" : "pause");
		r->params = next;
	}
	r->configure_err = err;
}

static void *worker_main(void *arg)
{
	struct cg_reporter *r = arg;
	sigset_t pipe;
	/* A TLS write to a connection the server dropped must not kill the
	 * profiler (curl, told not to touch signals, leaves SIGPIPE to us). */
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);
	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (!r->head && !r->want_configure && !r->stopping)
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->want_configure && !r->stopping) {
			r->want_configure = false;
			worker_configure(r);
			continue;
		}
		struct job *j = r->head;
		if (!j)
			break; /* stopping and nothing left */
		r->head = j->next;
		if (!r->head)
			r->tail = NULL;
		pthread_mutex_unlock(&r->mu);
		post_or_spool(r, &j->b);
		free(j->b.body);
		free(j);
		pthread_mutex_lock(&r->mu);
		r->queued--;
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* Called with mu held. */
static int start_worker(struct cg_reporter *r)
{
	int err = -pthread_create(&r->worker, NULL, worker_main, r);
	if (err == 0)
		r->worker_started = true;
	return err;
}

/* Hand a batch (its body copied) to the worker; -EBUSY when the queue is
 * full. */
static int enqueue(struct cg_reporter *r, const struct cg_batch *b)
{
	struct job *j = calloc(1, sizeof(*j));
	int err = 0;
	if (!j || !(j->b.body = malloc(b->len ? b->len : 1))) {
		free(j);
		return -ENOMEM;
	}
	memcpy(j->b.body, b->body, b->len);
	memcpy(j->b.id, b->id, sizeof(j->b.id));
	memcpy(j->b.profiling_group, b->profiling_group, sizeof(j->b.profiling_group));
	memcpy(j->b.profile_token, b->profile_token, sizeof(j->b.profile_token));
	memcpy(j->b.content_type, b->content_type, sizeof(j->b.content_type));
	j->b.len = b->len;
	pthread_mutex_lock(&r->mu);
	if (r->queued >= REPORTER_MAX_QUEUED) {
		err = -EBUSY;
	} else if (!r->worker_started) {
		err = start_worker(r);
	}
	if (!err) {
		if (r->tail)
			r->tail->next = j;
		else
			r->head = j;
		r->tail = j;
		r->queued++;
		pthread_cond_signal(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	if (err) {
		free(j->b.body);
		free(j);
	}
	return err;
}

static uint64_t min_report_ms(struct cg_reporter *r)
{
	pthread_mutex_lock(&r->mu);
	uint64_t ms = (uint64_t)r->params.min_reporting_s * 1000u;
	pthread_mutex_unlock(&r->mu);
	return ms;
}

int reporter_submit_encoded(struct cg_reporter *r, const void *body, size_t len,
			    uint64_t window_ms, uint64_t samples)
{
	struct cg_batch b;
	int err = 0;

	if (!r)
		return 0;
	if (!samples) {
		cg_debug("empty window: nothing to report");
		return 0;
	}
	pthread_mutex_lock(&r->mu);
	bool paused = !r->params.should_profile;
	pthread_mutex_unlock(&r->mu);
	if (paused) {
		/* Sampled before the first reply arrived, which says this
		 * group is not to be profiled now: honour it. */
		cg_info("profiling group %s is paused: window not reported", r->c->profiling_group);
		return 0;
	}
	if (window_ms < min_report_ms(r)) {
		cg_debug("window of %llu ms is shorter than the minimum %llu ms: not reported",
			 (unsigned long long)window_ms, (unsigned long long)min_report_ms(r));
		return 0;
	}
	memset(&b, 0, sizeof(b));
	/* Time-ordered and unique across processes sharing a spool. */
	snprintf(b.id, sizeof(b.id), "%013llu-%d-%u", (unsigned long long)cg_epoch_ms(),
		 (int)getpid(), r->seq++);
	snprintf(b.profiling_group, sizeof(b.profiling_group), "%s", r->c->profiling_group);
	reporter_uuid(b.profile_token);
	snprintf(b.content_type, sizeof(b.content_type), "application/json");
	b.body = (void *)body;
	b.len = len;

	if (r->u) {
		err = enqueue(r, &b);
		if (err == 0)
			return 0;
		if (err == -EBUSY)
			cg_warn("the endpoint is not keeping up: batch %s goes to the spool", b.id);
	}
	return spool_batch(r, &b, NULL);
}

int reporter_submit(struct cg_reporter *r, const struct cg_profile *p)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int err;

	if (!r)
		return 0;
	uint64_t samples = profile_samples(p);
	uint64_t start = profile_start_ms(p), end = profile_end_ms(p);
	uint64_t window = end > start ? end - start : 0;
	if (!samples || window < min_report_ms(r))
		return reporter_submit_encoded(r, NULL, 0, window, samples);
	f = open_memstream(&text, &len);
	if (!f)
		return cg_fail(-errno, "cannot encode the profile: %s", strerror(errno));
	struct cg_encode_opts o = {.include_idle = true};
	err = encode_profile(CG_FMT_CODEGURU, p, &o, f);
	if (fclose(f) && !err)
		err = cg_fail(-EIO, "cannot encode the profile");
	if (!err)
		err = reporter_submit_encoded(r, text, len, window, samples);
	free(text);
	return err;
}
